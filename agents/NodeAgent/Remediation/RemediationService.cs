using System.Globalization;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Toolforge.Agents.Common.Files;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Checks.Docker;
using Toolforge.Agents.NodeAgent.Checks.Kubelet;
using Toolforge.Agents.NodeAgent.Checks.Systemd;

namespace Toolforge.Agents.NodeAgent.Remediation;

/// <summary>
/// Off by default. When a unit's checks have failed for FailingFor, restart it over D-Bus (RestartUnit, mode
/// "replace"), never more than once per Cooldown (the time of the last restart survives agent restarts), and report
/// each restart as an event.
/// </summary>
internal sealed partial class RemediationService(
    SystemdClient systemd,
    AgentState state,
    IOptions<RemediationOptions> options,
    IOptions<KubeletOptions> kubelet,
    IOptions<DockerOptions> docker,
    IOptions<NodeOptions> node,
    TimeProvider time,
    ILogger<RemediationService> logger) : BackgroundService
{
    private sealed record Target(string Name, string Unit, UnitRemediation Policy, string[] Checks);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var o = options.Value;
        var targets = new[]
        {
            new Target("kubelet", kubelet.Value.Unit, o.Kubelet, [KubeletCheck.Unit, KubeletCheck.Healthz]),
            new Target("docker", docker.Value.Unit, o.Docker, [DockerCheck.Unit, DockerCheck.Engine]),
        }.Where(t => t.Policy.Enabled).ToList();
        if (targets.Count == 0)
        {
            return;
        }

        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(5), time);
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
        {
            foreach (var t in targets)
            {
                await ConsiderAsync(t, stoppingToken).ConfigureAwait(false);
            }
        }
    }

    private async Task ConsiderAsync(Target t, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var failingSince = t.Checks.Select(state.GetCheck)
            .Where(c => c is { State: CheckState.Failing })
            .Select(c => c!.Since.ToDateTimeOffset())
            .DefaultIfEmpty(DateTimeOffset.MaxValue)
            .Min();
        if (now - failingSince < t.Policy.FailingFor)
        {
            return;
        }

        var last = LastRestart(t.Name);
        if (last is { } l && now - l < t.Policy.Cooldown)
        {
            return;
        }

        SaveLastRestart(t.Name, now);
        try
        {
            var job = await systemd.RestartUnitAsync(t.Unit, "replace", ct).ConfigureAwait(false);
            state.AddEvent("remediation-restart", $"restarted {t.Unit} after its checks failed for {(now - failingSince).TotalMinutes:0} min",
                new Dictionary<string, string> { ["unit"] = t.Unit, ["job"] = job });
        }
        catch (SystemdException ex)
        {
            state.AddEvent("remediation-failed", $"could not restart {t.Unit}: {ex.Message}", new Dictionary<string, string> { ["unit"] = t.Unit });
            Log.Failed(logger, t.Unit, ex.Message);
        }
    }

    private string StateFile(string name) => Path.Combine(node.Value.StateDirectory, $"node-agent.remediation-{name}");

    private DateTimeOffset? LastRestart(string name) =>
        File.Exists(StateFile(name)) && DateTimeOffset.TryParse(File.ReadAllText(StateFile(name)).Trim(), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t)
            ? t : null;

    // Durably, and only over a regular file or nothing (DurableFile refuses a device, FIFO, directory or symlink).
    private void SaveLastRestart(string name, DateTimeOffset at) =>
        DurableFile.Write(StateFile(name), at.ToString("O", CultureInfo.InvariantCulture));

    private static partial class Log
    {
        [LoggerMessage(EventIds.RemediationFailed, LogLevel.Error, "remediation: restarting {Unit} failed: {Reason}")]
        public static partial void Failed(ILogger logger, string unit, string reason);
    }
}
