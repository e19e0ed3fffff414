using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Common.Tls;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Common.Tests;

/// <summary>
/// Puppet renews a host's certificate under running agents: the key first, then the certificate. The connection an
/// agent reports on keeps the pair it has until the files make a pair again, then loads them and drops its channels,
/// so the next call presents the new certificate. (On a booted host with a coordinator that refuses the old
/// certificate: Packaging.Tests/DeployTests.)
/// </summary>
public sealed class CertificateRenewalTests
{
    [Fact]
    public void ARenewal_KeyThenCertificate_IsLoadedOnceBothAreWritten_AndHalfOfItNever()
    {
        using var dir = new TempDir("renewal");
        using var pki = DevPki.Create();
        pki.WriteCa(dir.Path);
        var (cert, key) = pki.IssueTo(dir.Path, "old.example");
        DevPki.WriteTo(dir.Path, "new.example", pki.Issue("new.example"));
        var log = new ListLogger<CoordinatorConnection>();
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.UtcNow); // the files are looked at once a second
        using var connection = new CoordinatorConnection(Microsoft.Extensions.Options.Options.Create(new ReportingOptions
        {
            Address = "https://127.0.0.1:9",
            Certificate = cert,
            Key = key,
            CaBundle = dir["ca.pem"],
        }), log, time);
        _ = connection.AgentClient();
        Assert.Equal("old.example", connection.Node);

        // The key is replaced; the certificate is still the old one: not a pair. The old pair stays in use.
        Replace(dir["new.example.key"], key, TimeSpan.FromSeconds(1));
        time.Advance(TimeSpan.FromSeconds(1));
        _ = connection.AgentClient();
        Assert.Equal("old.example", connection.Node);
        Assert.Equal(0, connection.Reloads);
        time.Advance(TimeSpan.FromSeconds(1));
        _ = connection.AgentClient();
        Assert.Single(log.Lines, l => l.Level == Microsoft.Extensions.Logging.LogLevel.Warning && l.Message.Contains("do not load yet", StringComparison.Ordinal)); // said once, not at every call

        // Then the certificate: the new pair is loaded, once.
        Replace(dir["new.example.pem"], cert, TimeSpan.FromSeconds(2));
        time.Advance(TimeSpan.FromSeconds(1));
        _ = connection.AgentClient();
        Assert.Equal("new.example", connection.Node);
        Assert.Equal(1, connection.Reloads);
        _ = connection.AgentClient();
        Assert.Equal(1, connection.Reloads);
    }

    // Renamed into place as puppet writes files, with a later modification time than the file it replaces.
    private static void Replace(string from, string to, TimeSpan later)
    {
        var temp = to + ".new";
        File.Copy(from, temp, overwrite: true);
        File.SetLastWriteTimeUtc(temp, DateTime.UtcNow + later);
        File.Move(temp, to, overwrite: true);
    }
}
