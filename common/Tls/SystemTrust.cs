using System.Runtime.InteropServices;

namespace Toolforge.Agents.Common.Tls;

/// <summary>
/// Narrows what OpenSSL calls the system trust store, for a short-lived client that trusts only the coordinator's CA.
/// On Linux .NET builds a chain for the client's own certificate before its first handshake, and to do so loads
/// every certificate of the system store (Debian's /etc/ssl/certs: 292 of them, ~130 ms of a whole `agentctl nodes`
/// that takes ~200 ms; 65 ms with this). Who the coordinator is stays decided by the CA bundle alone
/// (<see cref="Certificates.ServerValidator"/> never consults the system store), so nothing is trusted that was not
/// before; an SSL_CERT_FILE or SSL_CERT_DIR already set is replaced for the same reason (this process uses neither).
/// Must run before the process's first TLS handshake.
/// </summary>
public static partial class SystemTrust
{
    public static void NarrowTo(string caBundlePath)
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        // OpenSSL reads the C environment (getenv); .NET's Environment.SetEnvironmentVariable does not change that one
        // on Unix (measured: setting only .NET's copy left agentctl nodes at ~200 ms, setenv alone brought it to 60 ms).
        Set("SSL_CERT_FILE", Path.GetFullPath(caBundlePath));
        Set("SSL_CERT_DIR", "/nonexistent/toolforge-agents");
    }

    private static void Set(string name, string value)
    {
        if (SetEnv(name, value, 1) != 0)
        {
            throw new InvalidOperationException($"setenv {name} failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    [LibraryImport("libc", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int SetEnv(string name, string value, int overwrite);
}
