using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Options;
using Prometheus;
using Toolforge.Agents.Common.Tls;

namespace Toolforge.Agents.Coordinator.Security;

/// <summary>
/// Decides, during the TLS handshake, whether a client certificate may connect: it must chain to the configured CA
/// bundle, allow clientAuth when it carries an extended key usage, stand for one identity (not an ambiguous set of
/// names), and not be on the deny-list (serial, SHA-256 fingerprint or any of its names). The deny-list is read from
/// the current policy, so a reload takes effect for new connections at once (and for open ones at their next call).
/// </summary>
public sealed class ClientCertificateValidator
{
    private static readonly Counter Rejected = Metrics.CreateCounter(
        "toolforge_coordinator_rejected_handshakes_total", "Client certificates refused during the TLS handshake.", "reason");

    private readonly ReloadingFiles<X509Certificate2Collection> _bundle;
    private readonly PolicyProvider _policy;
    private readonly RefusalLog _refusals;

    public ClientCertificateValidator(IOptions<SecurityOptions> options, PolicyProvider policy, RefusalLog refusals, ILogger<ClientCertificateValidator>? logger = null)
    {
        var path = options.Value.CaBundle;
        _bundle = new ReloadingFiles<X509Certificate2Collection>([path], () => Certificates.LoadBundle(path), reason => // a renewed CA bundle, read at the next handshake
        {
            CoordinatorLog.ReloadFailures.Inc();
            if (logger is not null)
            {
                CoordinatorLog.CertificateNotReloaded(logger, "Coordinator:CaBundle", reason);
            }
        });
        _ = _bundle.Current;
        _policy = policy;
        _refusals = refusals;
    }

    public bool Validate(X509Certificate2 certificate, X509Chain? presented)
    {
        var extra = new X509Certificate2Collection();
        if (presented is not null)
        {
            foreach (var e in presented.ChainElements)
            {
                extra.Add(e.Certificate);
            }
        }

        if (Certificates.ValidateChain(certificate, _bundle.Current, extra) is { } reason)
        {
            return Refuse("untrusted", certificate.Subject, reason);
        }

        if (CertificateIdentity.UsageProblem(certificate, CertificateIdentity.ClientAuthOid) is { } usage)
        {
            return Refuse("usage", certificate.Subject, usage);
        }

        var identity = CertificateIdentity.Of(certificate);
        if (identity.Name is null)
        {
            return Refuse("ambiguous", certificate.Subject, identity.Problem!);
        }

        if (_policy.Current.Denied.Match(certificate, identity, CertificateIdentity.Fingerprint(certificate)) is { } entry)
        {
            return Refuse("denied", identity.Name, $"certificate (serial {certificate.SerialNumber}) is on the deny-list ({entry})");
        }

        return true;
    }

    // Logged like refused calls: once a minute per certificate, so a client retrying handshakes cannot flood the journal.
    private bool Refuse(string label, string subject, string reason)
    {
        Rejected.WithLabels(label).Inc();
        _refusals.Note(subject, "TLS handshake", Grpc.Core.StatusCode.Unauthenticated, reason);
        return false;
    }
}
