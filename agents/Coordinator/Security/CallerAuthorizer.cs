using System.Runtime.CompilerServices;
using System.Security.Cryptography.X509Certificates;
using Grpc.Core;
using Toolforge.Agents.Common.Tls;

namespace Toolforge.Agents.Coordinator.Security;

/// <summary>
/// The check every RPC starts with: who calls (certificate identity), is the certificate denied now (the deny-list
/// may have changed since the handshake), and does the caller hold one of the roles the call needs. Refusals are
/// PERMISSION_DENIED, counted and logged by <see cref="RefusalLog"/>.
/// </summary>
public sealed class CallerAuthorizer(PolicyProvider policy, RefusalLog refusals)
{
    private sealed record CertificateFacts(CertificateIdentity Identity, string Fingerprint);

    private static readonly ConditionalWeakTable<X509Certificate2, CertificateFacts> Facts = [];

    public PolicyProvider Policy => policy;

    /// <summary>The caller, checked against the deny-list; no role needed yet.</summary>
    public Caller Identify(ServerCallContext context)
    {
        var method = MethodName(context);
        var cert = context.GetHttpContext().Connection.ClientCertificate
            ?? throw Refuse("(no certificate)", method, StatusCode.Unauthenticated, "no client certificate");
        var facts = Facts.GetValue(cert, c => new CertificateFacts(CertificateIdentity.Of(c), CertificateIdentity.Fingerprint(c)));
        if (facts.Identity.Name is not { } identity)
        {
            throw Refuse(cert.Subject, method, StatusCode.PermissionDenied, facts.Identity.Problem!);
        }

        var p = policy.Current;
        if (p.Denied.Match(cert, facts.Identity, facts.Fingerprint) is { } entry)
        {
            throw Refuse(identity, method, StatusCode.PermissionDenied, $"certificate is on the deny-list ({entry})");
        }

        return new Caller(identity, p.RolesOf(identity), cert, facts.Identity, facts.Fingerprint);
    }

    /// <summary>Returns the caller, or throws PERMISSION_DENIED when they hold none of <paramref name="anyOf"/>.</summary>
    public Caller Require(ServerCallContext context, Roles anyOf, string action)
    {
        var caller = Identify(context);
        if (!caller.Is(anyOf))
        {
            throw Refuse(caller.Identity, MethodName(context), StatusCode.PermissionDenied,
                $"{caller.Identity} may not {action}: needs the {RoleNames(anyOf)} role (has {RoleNames(caller.Roles)})");
        }

        return caller;
    }

    /// <summary>Counts and logs a refusal, and returns the exception to throw.</summary>
    public RpcException Refuse(string identity, string method, StatusCode status, string message, Metadata? trailers = null)
    {
        refusals.Note(identity, method, status, message);
        return trailers is null ? new RpcException(new Status(status, message)) : new RpcException(new Status(status, message), trailers);
    }

    public RpcException Refuse(ServerCallContext context, Caller caller, StatusCode status, string message, Metadata? trailers = null) =>
        Refuse(caller.Identity, MethodName(context), status, message, trailers);

    public static string MethodName(ServerCallContext context)
    {
        var m = context.Method;
        var slash = m.LastIndexOf('/');
        return slash >= 0 ? m[(slash + 1)..] : m;
    }

    public static string RoleNames(Roles roles) => roles == Roles.None
        ? "none"
        : string.Join(" or ", Enum.GetValues<Roles>().Where(r => r != Roles.None && roles.HasFlag(r)).Select(r => r.ToString().ToLowerInvariant()));
}
