using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Toolforge.Agents.Common.Tls;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Coordinator.Tests;

/// <summary>
/// Puppet renews the coordinator's certificate under it (a new key written, then its certificate): the running
/// coordinator presents the new pair at the next handshake without a restart, and keeps the old one while the files do
/// not make a pair yet.
/// </summary>
public sealed class CertificateReloadTests
{
    // The certificate the coordinator presents to a new connection (its thumbprint), and whether the call worked.
    private static async Task<string> PresentedAsync(CoordinatorHarness h)
    {
        string? seen = null;
        var (cert, key) = h.Issue(CoordinatorHarness.Viewer);
        using var client = Certificates.LoadWithKey(cert, key);
        using var handler = new SocketsHttpHandler();
        handler.SslOptions.ClientCertificates = [client];
        handler.SslOptions.RemoteCertificateValidationCallback = (_, c, _, _) =>
        {
            seen = c is null ? null : new X509Certificate2(c).Thumbprint;
            return true;
        };
        using var channel = Grpc.Net.Client.GrpcChannel.ForAddress(h.Address, new Grpc.Net.Client.GrpcChannelOptions { HttpHandler = handler, DisposeHttpClient = false });
        await new AdminService.AdminServiceClient(channel).ListNodesAsync(new ListNodesRequest(), deadline: DateTime.UtcNow.AddSeconds(10));
        return seen ?? throw new InvalidOperationException("no certificate presented");
    }

    private static double ReloadFailures() => Security.CoordinatorLog.ReloadFailures.Value;

    [Fact]
    public async Task A_renewed_certificate_is_presented_at_the_next_handshake_and_a_half_written_pair_keeps_the_old_one()
    {
        await using var h = await CoordinatorHarness.StartAsync();
        var certPath = Path.Combine(h.CertDir, "coordinator.pem");
        var keyPath = Path.Combine(h.CertDir, "coordinator.key");
        var before = await PresentedAsync(h);
        using var old = X509Certificate2.CreateFromPem(File.ReadAllText(certPath));
        Assert.Equal(old.Thumbprint, before);

        using var renewal = new TempDir();
        var (newCert, newKey) = h.Pki.IssueTo(renewal.Path, "coordinator", server: true);
        using var fresh = X509Certificate2.CreateFromPem(File.ReadAllText(newCert));

        // The key first (as puppet writes them): no pair yet, the old one stays in use.
        File.Copy(newKey, keyPath + ".new");
        File.Move(keyPath + ".new", keyPath, overwrite: true);
        File.SetLastWriteTimeUtc(keyPath, DateTime.UtcNow.AddSeconds(5)); // a change the stamp sees, whatever the clock's granularity
        var failures = ReloadFailures();
        string presented = string.Empty;
        // The positive event: the coordinator tried the changed files and they did not load; meanwhile it served the old pair.
        Assert.True(await Peer.EventuallyAsync(async () => (presented = await PresentedAsync(h)) is not null && ReloadFailures() > failures, TimeSpan.FromSeconds(10)));
        Assert.Equal(old.Thumbprint, presented);
        Assert.Equal(old.Thumbprint, await PresentedAsync(h));

        // Then its certificate: the new pair from the next handshake on, no restart.
        File.Copy(newCert, certPath + ".new");
        File.Move(certPath + ".new", certPath, overwrite: true);
        File.SetLastWriteTimeUtc(certPath, DateTime.UtcNow.AddSeconds(6));
        Assert.True(await Peer.EventuallyAsync(async () => await PresentedAsync(h) == fresh.Thumbprint, TimeSpan.FromSeconds(10)));
    }
}
