using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;
using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.Coordinator.Remediation;

/// <summary>The "Coordinator:Remediation:Alertmanager" section: the Alertmanager asked before the gated steps.</summary>
public sealed class AlertmanagerOptions : IValidatedOptions
{
    /// <summary>Its base URL (http://alertmanager.example:9093); empty: no pool may set AlertMatchers.</summary>
    public string Url { get; set; } = string.Empty;

    /// <summary>How long the question may take; no answer in time is a refusal (fail closed).</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>The steps asked about: a node about to do one of these waits while a matching alert is active.</summary>
    public List<string> Steps { get; set; } = ["cordon", "reboot"];

    public IEnumerable<string> Validate(string section)
    {
        var problems = new List<string>();
        if (Url.Length > 0 && (!Uri.TryCreate(Url, UriKind.Absolute, out var u) || u.Scheme is not ("http" or "https")))
        {
            problems.Add($"{Check.Key(section, nameof(Url))}: must be an http(s) URL such as http://alertmanager.example:9093 (got \"{Url}\")");
        }

        problems.AddRange(Check.Positive(section, nameof(Timeout), Timeout));
        return problems;
    }
}

/// <summary>
/// The Alertmanager gate: before a gated step (cordon, reboot), Alertmanager's v2 API is asked for the alerts that are
/// active, not silenced, not inhibited and match all of the pool's matchers; any such alert refuses the step, naming
/// it. Silenced in Alertmanager, it does not (unlike kured's query of Prometheus' ALERTS, which ignores silences).
/// Alertmanager down, slow or answering nonsense refuses too: fail closed.
/// </summary>
public sealed partial class AlertGate(IOptionsMonitor<RemediationOptions> options)
{
    private const int MaxAnswer = 4 * 1024 * 1024;

    private static readonly HttpClient Http = new(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5), AllowAutoRedirect = false }) { Timeout = Timeout.InfiniteTimeSpan };

    [GeneratedRegex("""^[A-Za-z_][A-Za-z0-9_]*(=|!=|=~|!~)"([^"\\]|\\.)*"\z""", RegexOptions.CultureInvariant)]
    public static partial Regex Matcher();

    /// <summary>
    /// Null when <paramref name="step"/> may go on; else why not, in one line. Every <paramref name="take"/> of a lease
    /// is asked about whatever its step (an agent back after its lease lapsed may first ask at "evict"); a renewal only
    /// at the gated steps.
    /// </summary>
    public async Task<string?> RefusesAsync(RemediationPoolOptions pool, string step, bool take, CancellationToken ct)
    {
        var o = options.CurrentValue.Alertmanager;
        if (pool.AlertMatchers.Count == 0 || (!take && !o.Steps.Contains(step, StringComparer.Ordinal)))
        {
            return null;
        }

        var query = "active=true&silenced=false&inhibited=false&unprocessed=true"
            + string.Concat(pool.AlertMatchers.Select(m => "&filter=" + Uri.EscapeDataString(m)));
        var url = $"{o.Url.TrimEnd('/')}/api/v2/alerts?{query}";
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(o.Timeout);
        try
        {
            using var response = await Http.GetAsync(url, HttpCompletionOption.ResponseHeadersRead, deadline.Token).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                return $"Alertmanager at {o.Url} answered {(int)response.StatusCode} {response.ReasonPhrase}: no {step} while it cannot say which alerts are active";
            }

            await using var body = await response.Content.ReadAsStreamAsync(deadline.Token).ConfigureAwait(false);
            var buffer = new MemoryStream();
            var chunk = new byte[81920];
            int read;
            while ((read = await body.ReadAsync(chunk, deadline.Token).ConfigureAwait(false)) > 0)
            {
                if (buffer.Length + read > MaxAnswer)
                {
                    return $"Alertmanager at {o.Url} answered more than {MaxAnswer / 1024 / 1024} MiB of alerts: no {step} while so much is active";
                }

                buffer.Write(chunk, 0, read);
            }

            using var doc = JsonDocument.Parse(buffer.ToArray());
            if (doc.RootElement.ValueKind != JsonValueKind.Array)
            {
                return $"Alertmanager at {o.Url} answered no list of alerts: no {step}";
            }

            var firing = doc.RootElement.EnumerateArray().Select(Describe).ToList();
            return firing.Count == 0
                ? null
                : $"{firing.Count} alert(s) matching {string.Join(", ", pool.AlertMatchers)} active in Alertmanager, not silenced: {string.Join("; ", firing.Take(3))}{(firing.Count > 3 ? "; ..." : string.Empty)}; no {step} until they resolve or are silenced";
        }
        catch (Exception ex) when (ex is HttpRequestException or JsonException or IOException || (ex is OperationCanceledException && !ct.IsCancellationRequested))
        {
            var why = ex is OperationCanceledException ? $"no answer within {o.Timeout.TotalSeconds:0.#} s" : ex.Message;
            return $"Alertmanager at {o.Url} cannot be asked ({Cut(why)}): no {step} without it (fail closed)";
        }
    }

    private static string Describe(JsonElement alert)
    {
        if (alert.ValueKind != JsonValueKind.Object || !alert.TryGetProperty("labels", out var labels) || labels.ValueKind != JsonValueKind.Object)
        {
            return "(an alert without labels)";
        }

        var name = labels.TryGetProperty("alertname", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString()! : "(no alertname)";
        var rest = labels.EnumerateObject().Where(p => p.Name != "alertname" && p.Value.ValueKind == JsonValueKind.String).Take(4).Select(p => $"{p.Name}={p.Value.GetString()}");
        return Cut($"{name} {{{string.Join(", ", rest)}}}");
    }

    private static string Cut(string s) => Common.Cli.Output.Escape(s.Length <= 200 ? s : s[..200] + "…");
}
