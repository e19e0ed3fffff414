using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Toolforge.Agents.NodeAgent.Audit.Nftables;
using Toolforge.Agents.NodeAgent.Checks;

namespace Toolforge.Agents.NodeAgent.Audit.KubeProxy;

/// <summary>
/// Which mode kube-proxy runs in: the configured one, or (auto) kube-proxy's own /proxyMode answer, or, when it does
/// not answer, whether an `ip kube-proxy` nftables table exists. Asked again at most once a minute.
/// </summary>
internal sealed partial class ProxyModeDetector(IOptions<KubeProxyOptions> options, IOptions<NftablesOptions> nftables, IHttpClientFactory http, TimeProvider time, ILogger<ProxyModeDetector> logger)
{
    private static readonly TimeSpan Remember = TimeSpan.FromMinutes(1);
    private readonly SemaphoreSlim _lock = new(1, 1);
    private (KubeProxyMode Mode, string How, DateTimeOffset At)? _last;

    public async Task<(KubeProxyMode Mode, string How)> ModeAsync(CancellationToken ct)
    {
        var o = options.Value;
        if (o.Mode != KubeProxyMode.Auto)
        {
            return (o.Mode, "configured");
        }

        await _lock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (_last is { } l && time.GetUtcNow() - l.At < Remember)
            {
                return (l.Mode, l.How);
            }

            var found = await DetectAsync(o, ct).ConfigureAwait(false);
            if (_last?.Mode != found.Mode)
            {
                Log.Mode(logger, found.Mode.ToString().ToLowerInvariant(), found.How);
            }

            _last = (found.Mode, found.How, time.GetUtcNow());
            return found;
        }
        finally
        {
            _lock.Release();
        }
    }

    private async Task<(KubeProxyMode Mode, string How)> DetectAsync(KubeProxyOptions o, CancellationToken ct)
    {
        try
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
            cts.CancelAfter(TimeSpan.FromSeconds(2));
            using var client = http.CreateClient("kube-proxy");
            var answer = (await client.GetStringAsync(o.ProxyModeUrl, cts.Token).ConfigureAwait(false)).Trim();
            if (answer is "nftables" or "iptables")
            {
                return (answer == "nftables" ? KubeProxyMode.Nftables : KubeProxyMode.Iptables, $"kube-proxy says so at {o.ProxyModeUrl}");
            }
        }
        catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException && !ct.IsCancellationRequested)
        {
            // kube-proxy's metrics port does not answer: look at the tables instead
        }

        var nft = nftables.Value;
        if (nft.Enabled)
        {
            try
            {
                var json = await ProcessRunner.RunAsync(nft.Command, nft.Arguments, nft.Timeout, ct).ConfigureAwait(false);
                if (json.Contains("\"kube-proxy\"", StringComparison.Ordinal))
                {
                    return (KubeProxyMode.Nftables, "an nftables table ip kube-proxy exists (kube-proxy's /proxyMode did not answer)");
                }
            }
            catch (CommandFailedException)
            {
                // no such table (or no nft): iptables mode
            }
        }

        return (KubeProxyMode.Iptables, "no nftables table ip kube-proxy (kube-proxy's /proxyMode did not answer)");
    }

    private static partial class Log
    {
        [LoggerMessage(EventIds.KubeProxyMode, LogLevel.Information, "kube-proxy runs in {Mode} mode: {How}")]
        public static partial void Mode(ILogger logger, string mode, string how);
    }
}
