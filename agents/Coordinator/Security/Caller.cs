using System.Security.Cryptography.X509Certificates;
using Toolforge.Agents.Common.Tls;

namespace Toolforge.Agents.Coordinator.Security;

/// <summary>Who is calling: the identity of the client certificate the handshake accepted, and its roles now.</summary>
public sealed record Caller(string Identity, Roles Roles, X509Certificate2 Certificate, CertificateIdentity Names, string Fingerprint)
{
    public bool Is(Roles anyOf) => (Roles & anyOf) != 0;
}
