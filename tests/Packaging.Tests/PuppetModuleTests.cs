using System.Text.RegularExpressions;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Packaging.Tests;

/// <summary>
/// The puppet module packaging/puppet/toolforge_agents: what Toolforge's puppet would load (parser and EPP validation,
/// puppet-lint with warnings as failures), its rspec-puppet unit tests, and the files it renders for the peers
/// (rsyslog, haproxy, Prometheus) checked by those peers' own tools. The daemons' JSON is bound by each daemon's own
/// test project (ShippedConfigTests, TheConfigPuppetRenders_...).
/// </summary>
public sealed class PuppetModuleTests
{
    private static string Root => PuppetModule.Root;

    private static List<string> Files(string folder, string pattern) =>
        Directory.GetFiles(Path.Combine(Root, folder), pattern, SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();

    [Fact]
    public async Task TheModule_PassesPuppetParserValidate_EppValidate_AndPuppetLintFailingOnWarnings()
    {
        var puppet = Peer.Require("puppet", "puppet");
        var lint = Peer.Require("puppet-lint", "puppet-lint");
        var manifests = Files("manifests", "*.pp");
        var templates = Files("templates", "*.epp");
        Assert.Equal(["builder.pp", "control.pp", "init.pp", "log_shipper.pp", "monitoring.pp", "syslog.pp", "worker.pp"], manifests.Select(Path.GetFileName));
        Assert.NotEmpty(templates);

        var parser = await Run.ProcessAsync(puppet, ["parser", "validate", .. manifests], TimeSpan.FromMinutes(2));
        Assert.True(parser.ExitCode == 0 && parser.Stderr.Length == 0, parser.ToString());
        var epp = await Run.ProcessAsync(puppet, ["epp", "validate", .. templates], TimeSpan.FromMinutes(2));
        Assert.True(epp.ExitCode == 0 && epp.Stderr.Length == 0, epp.ToString());
        var lints = await Run.ProcessAsync(lint, ["--fail-on-warnings", Path.Combine(Root, "manifests")], TimeSpan.FromMinutes(2));
        Assert.True(lints.ExitCode == 0 && lints.Stdout.Trim().Length == 0, lints.ToString());
    }

    [Fact]
    public async Task TheModulesRspecPuppetTests_AllPass()
    {
        var rspec = Peer.Require("rspec", "ruby-rspec-puppet");
        Peer.Require("puppet", "puppet");
        var r = await Run.ProcessAsync(rspec, ["spec"], TimeSpan.FromMinutes(5), workingDirectory: Root);
        Assert.True(r.ExitCode == 0, r.ToString());
        var summary = Regex.Match(r.Stdout, @"(\d+) examples?, 0 failures");
        Assert.True(summary.Success, r.ToString());
        Assert.True(int.Parse(summary.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) >= 40, summary.Value);
        Assert.DoesNotContain("pending", r.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheReceiverPuppetRenders_PassesRsyslogdsOwnCheck_ButForThisHostsCertificates()
    {
        var rsyslogd = Peer.Require("rsyslogd", "rsyslog");
        var conf = await PuppetModule.RenderedFileAsync("syslog", "toolforge-receiver.conf");
        var r = await Run.ProcessAsync(rsyslogd, ["-N1", "-f", conf], TimeSpan.FromMinutes(1));
        // The puppet certificate, key and CA of the syslog host are not on this machine: rsyslogd names each one.
        var errors = r.Stderr.Split('\n').Where(l => l.Contains("error", StringComparison.OrdinalIgnoreCase)).ToList();
        var other = errors.Where(l => !Regex.IsMatch(l, @"/var/lib/puppet/ssl/\S+'? (couldn't|could not) be accessed: No such file or directory")).ToList();
        Assert.True(other.Count == 0, r.ToString());
        Assert.True(r.ExitCode == 0 || errors.Count > 0, r.ToString());
        Assert.DoesNotContain("could not load module", r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheHaproxyConfigPuppetRenders_PassesHaproxysOwnCheck_ButForNamesThisHostCannotResolve()
    {
        var haproxy = Peer.Require("haproxy", "haproxy");
        var cfg = await PuppetModule.RenderedFileAsync("control_postgresql", "haproxy.cfg");
        var r = await Run.ProcessAsync(haproxy, ["-c", "-f", cfg], TimeSpan.FromMinutes(1));
        var alerts = (r.Stdout + r.Stderr).Split('\n').Where(l => l.Contains("[ALERT]", StringComparison.Ordinal)).ToList();
        var other = alerts.Where(l => !l.Contains("could not resolve address 'tools-coordinator-", StringComparison.Ordinal)
            && !l.Contains("Failed to initialize server(s) addr", StringComparison.Ordinal)).ToList();
        Assert.True(other.Count == 0, r.ToString());
        Assert.True(r.ExitCode == 0 || alerts.Count > 0, r.ToString());
    }

    [Fact]
    public async Task ThePrometheusConfigPuppetRenders_PassesPromtool_WithItsAlertRules()
    {
        var promtool = Peer.Require("promtool", "prometheus");
        var config = await PuppetModule.RenderedFileAsync("monitoring", "prometheus.yml");
        var rules = await PuppetModule.RenderedFileAsync("monitoring", "toolforge-agents.rules.yml");
        using var dir = new TempDir();
        // The rules where puppet puts them, /etc/prometheus, are read from where it rendered them.
        await File.WriteAllTextAsync(dir["prometheus.yml"], (await File.ReadAllTextAsync(config)).Replace("/etc/prometheus/toolforge-agents.rules.yml", rules, StringComparison.Ordinal));
        var r = await Run.ProcessAsync(promtool, ["check", "config", dir["prometheus.yml"]], TimeSpan.FromMinutes(1));
        Assert.True(r.ExitCode == 0, r.ToString());
        // Every alert of the shipped file, each loaded (counted from the file, not written here).
        var shipped = File.ReadLines(Path.Combine(Run.RepoRoot, "packaging", "prometheus", "toolforge-agents.rules.yml")).Count(l => l.TrimStart().StartsWith("- alert:", StringComparison.Ordinal));
        Assert.True(shipped >= 11, $"only {shipped} alerts in the shipped rules");
        Assert.Contains($"SUCCESS: {shipped} rules found", r.Stdout, StringComparison.Ordinal);
    }
}
