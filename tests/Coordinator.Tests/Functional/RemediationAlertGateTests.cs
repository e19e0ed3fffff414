using System.Text;
using System.Text.Json.Nodes;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Coordinator.Tests;

/// <summary>
/// The Alertmanager gate against a real Alertmanager (Debian's, on loopback): a matching active alert holds cordon and
/// reboot, not other steps; silenced in Alertmanager it does not; Alertmanager down holds them too (fail closed).
/// </summary>
public sealed class RemediationAlertGateTests
{
    private static RemediationLeaseRequest Ask(string node, string incident, string step, ulong token = 0) => new() { Node = node, Incident = incident, Step = step, Token = token };

    [Fact]
    public async Task A_matching_unsilenced_alert_holds_cordon_and_reboot_a_silence_lets_them_and_alertmanager_down_holds_them()
    {
        var alertmanager = Peer.Require("prometheus-alertmanager", "prometheus-alertmanager");
        using var dir = new TempDir("am-gate");
        var port = Peer.FreePort();
        await File.WriteAllTextAsync(dir["alertmanager.yml"], "route: {receiver: none}\nreceivers: [{name: none}]\n");
        var am = BackgroundProcess.Start(alertmanager, [$"--config.file={dir["alertmanager.yml"]}", $"--storage.path={dir["data"]}", $"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="]);
        await using var _am = am;
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(10) };
        Assert.True(await Peer.EventuallyAsync(async () =>
        {
            try
            {
                return (await http.GetAsync("/-/ready")).IsSuccessStatusCode;
            }
            catch (HttpRequestException)
            {
                return false; // not listening yet
            }
        }, TimeSpan.FromSeconds(20)), am.Output);

        await using var h = await CoordinatorHarness.StartAsync(editConfig: c => c["Coordinator"]!["Remediation"] = new JsonObject
        {
            ["Alertmanager"] = new JsonObject { ["Url"] = $"http://127.0.0.1:{port}", ["Timeout"] = "00:00:02" },
            ["Pools"] = new JsonObject
            {
                ["nfs"] = new JsonObject
                {
                    ["Nodes"] = new JsonArray("tools-k8s-worker-nfs-*"), ["MaxConcurrent"] = 2, ["MinGap"] = "00:00:00",
                    ["AlertMatchers"] = new JsonArray("severity=\"critical\"", "alertname=~\"NFS.*\""),
                },
            },
        });
        var w1 = h.AgentClient("tools-k8s-worker-nfs-1");
        var first = await w1.RemediationLeaseAsync(Ask("tools-k8s-worker-nfs-1", "a", "cordon"));
        Assert.True(first.Granted, first.Refusal);

        // NFSDown (critical) fires; NFSSlow (warning) matches only one matcher and holds nothing.
        var alerts = new JsonArray(
            new JsonObject { ["labels"] = new JsonObject { ["alertname"] = "NFSDown", ["severity"] = "critical", ["server"] = "nfs-1" } },
            new JsonObject { ["labels"] = new JsonObject { ["alertname"] = "NFSSlow", ["severity"] = "warning" } });
        (await http.PostAsync("/api/v2/alerts", new StringContent(alerts.ToJsonString(), Encoding.UTF8, "application/json"))).EnsureSuccessStatusCode();
        Assert.True(await Peer.EventuallyAsync(async () => (await http.GetStringAsync("/api/v2/alerts?filter=alertname%3D%22NFSDown%22")).Contains("NFSDown", StringComparison.Ordinal), TimeSpan.FromSeconds(10)));

        var held = await h.AgentClient("tools-k8s-worker-nfs-2").RemediationLeaseAsync(Ask("tools-k8s-worker-nfs-2", "b", "cordon"));
        Assert.False(held.Granted);
        Assert.Contains("1 alert(s) matching severity=\"critical\", alertname=~\"NFS.*\" active in Alertmanager, not silenced: NFSDown {", held.Refusal, StringComparison.Ordinal);
        Assert.DoesNotContain("NFSSlow", held.Refusal, StringComparison.Ordinal);
        Assert.True((await w1.RemediationLeaseAsync(Ask("tools-k8s-worker-nfs-1", "a", "evict", first.Token))).Granted); // not a gated step
        Assert.Contains("no reboot until they resolve or are silenced", (await w1.RemediationLeaseAsync(Ask("tools-k8s-worker-nfs-1", "a", "reboot", first.Token))).Refusal, StringComparison.Ordinal);

        // Silenced in Alertmanager: the gate lets both through.
        var now = DateTimeOffset.UtcNow;
        var silence = new JsonObject
        {
            ["matchers"] = new JsonArray(new JsonObject { ["name"] = "alertname", ["value"] = "NFSDown", ["isRegex"] = false, ["isEqual"] = true }),
            ["startsAt"] = now.AddMinutes(-1).ToString("o"), ["endsAt"] = now.AddHours(1).ToString("o"), ["createdBy"] = "test", ["comment"] = "known, being fixed",
        };
        (await http.PostAsync("/api/v2/silences", new StringContent(silence.ToJsonString(), Encoding.UTF8, "application/json"))).EnsureSuccessStatusCode();
        Assert.True(await Peer.EventuallyAsync(async () => !(await http.GetStringAsync("/api/v2/alerts?silenced=false&filter=alertname%3D%22NFSDown%22")).Contains("NFSDown", StringComparison.Ordinal), TimeSpan.FromSeconds(10)));
        Assert.True((await w1.RemediationLeaseAsync(Ask("tools-k8s-worker-nfs-1", "a", "reboot", first.Token))).Granted);
        Assert.True((await h.AgentClient("tools-k8s-worker-nfs-2").RemediationLeaseAsync(Ask("tools-k8s-worker-nfs-2", "b", "cordon"))).Granted);

        // Alertmanager stopped: held, fail closed.
        await am.DisposeAsync();
        var down = await h.AgentClient("tools-k8s-worker-nfs-3").RemediationLeaseAsync(Ask("tools-k8s-worker-nfs-3", "c", "cordon"));
        Assert.False(down.Granted);
        Assert.Contains($"Alertmanager at http://127.0.0.1:{port} cannot be asked", down.Refusal, StringComparison.Ordinal);
        Assert.Contains("(fail closed)", down.Refusal, StringComparison.Ordinal);
    }
}
