using Grpc.Core;
using Microsoft.Extensions.Options;
using Toolforge.Agents.Common.Tls;

namespace Toolforge.Agents.Coordinator.Security;

public enum Role
{
    None,
    Viewer,
    Admin,
}

/// <summary>Who is calling (from the client certificate the handshake accepted) and what they may do.</summary>
public sealed class CallerAuthorizer(IOptions<CoordinatorOptions> options)
{
    private readonly HashSet<string> _admins = options.Value.Admins.ToHashSet(StringComparer.OrdinalIgnoreCase);
    private readonly HashSet<string> _viewers = options.Value.Viewers.ToHashSet(StringComparer.OrdinalIgnoreCase);

    public static string Identity(ServerCallContext context)
    {
        var cert = context.GetHttpContext().Connection.ClientCertificate
            ?? throw new RpcException(new Status(StatusCode.Unauthenticated, "no client certificate"));
        return Certificates.Identity(cert).ToLowerInvariant();
    }

    public Role RoleOf(string identity) =>
        _admins.Contains(identity) ? Role.Admin : _viewers.Contains(identity) ? Role.Viewer : Role.None;

    /// <summary>Returns the caller's identity, or throws PERMISSION_DENIED when their role is below <paramref name="needed"/>.</summary>
    public string Require(ServerCallContext context, Role needed, string action)
    {
        var identity = Identity(context);
        var role = RoleOf(identity);
        if (role < needed)
        {
            throw new RpcException(new Status(StatusCode.PermissionDenied,
                $"{identity} may not {action}: needs the {needed.ToString().ToLowerInvariant()} role (has {(role == Role.None ? "none" : role.ToString().ToLowerInvariant())})"));
        }

        return identity;
    }
}
