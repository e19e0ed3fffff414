using System.Net.Sockets;
using System.Security.Authentication;
using Grpc.Core;

namespace Toolforge.Agents.Common.Reporting;

/// <summary>
/// One line that says why a call to the coordinator failed, in an admin's words and naming what the admin set: the
/// flags for agentctl, the configuration keys for a daemon. TLS refusals say their real cause (our client certificate
/// refused, the coordinator's certificate not signed by our CA, a port that does not speak TLS), not gRPC's
/// "Error starting gRPC call" or "The response ended prematurely".
/// </summary>
public static class RpcFailure
{
    /// <summary>What the admin calls the settings a message may point at: "--ca" or "Coordinator:CaBundle", and so on.</summary>
    public sealed record Names(string Ca, string Certificate, string Address);

    /// <summary>A daemon's Coordinator section.</summary>
    public static readonly Names DaemonKeys = new($"{ReportingOptions.Section}:CaBundle", $"{ReportingOptions.Section}:Certificate", $"{ReportingOptions.Section}:Address");

    public static string Describe(RpcException ex, string server, TimeSpan timeout, Names names) =>
        Cli.Output.Escape(OneLine(DescribeCore(ex, server, timeout, names)));

    private static string OneLine(string s) => string.Join(' ', s.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    private static string DescribeCore(RpcException ex, string server, TimeSpan timeout, Names names)
    {
        switch (ex.StatusCode)
        {
            case StatusCode.PermissionDenied:
                return $"permission denied: {ex.Status.Detail}";
            case StatusCode.Unauthenticated:
                return $"not authenticated: {ex.Status.Detail}";
            case StatusCode.NotFound:
                return $"not found: {ex.Status.Detail}";
            case StatusCode.InvalidArgument:
                return $"invalid request: {ex.Status.Detail}";
            case StatusCode.DeadlineExceeded:
                return $"{server} did not answer within {timeout.TotalSeconds:0.#}s";
            default:
                break;
        }

        var refused = $"certificate rejected: {server} refused our client certificate ({names.Certificate})";
        const string Why = "is it signed by the coordinator's CA, not revoked, and allowed for client authentication?";
        for (Exception? e = ex.Status.DebugException; e is not null; e = e.InnerException)
        {
            switch (e)
            {
                case SocketException { SocketErrorCode: SocketError.ConnectionRefused }:
                    return $"cannot connect to {server}: connection refused (is the coordinator running?)";
                case SocketException s:
                    return $"cannot connect to {server}: {s.Message}";
                case AuthenticationException a when a.Message.Contains("remote certificate", StringComparison.OrdinalIgnoreCase):
                    return $"TLS handshake with {server} failed: its certificate is not trusted: not signed by the CA in {names.Ca}, or not for this name ({a.Message})";
                case AuthenticationException a when a.Message.Contains("frame", StringComparison.OrdinalIgnoreCase):
                    return $"{server} does not speak TLS (is {names.Address} the coordinator's port?): {a.Message}";
                case AuthenticationException a:
                    return $"TLS handshake with {server} failed: {a.Message} (the server's certificate is not from the CA in {names.Ca}, or ours ({names.Certificate}) was rejected)";
                case ObjectDisposedException { ObjectName: "System.Net.Security.SslStream" }:
                    // The same refusal seen a moment later: the server closed the TLS stream while the client still used it.
                    return $"{refused}: it closed the connection right after the TLS handshake: {Why}";
                case System.Net.Http.HttpIOException { HttpRequestError: System.Net.Http.HttpRequestError.ResponseEnded }:
                    // TLS 1.3: the server checks our certificate after the handshake and closes the connection before any answer.
                    return $"{refused}: it closed the connection right after the TLS handshake: {Why}";
                default:
                    break;
            }
        }

        var detail = ex.Status.DebugException?.GetBaseException().Message ?? ex.Status.Detail;
        if (ex.StatusCode == StatusCode.Unavailable || ex.StatusCode == StatusCode.Internal)
        {
            // A client certificate refused by the server shows up as the connection closing during or right after the handshake.
            if (detail.Contains("SSL", StringComparison.OrdinalIgnoreCase) || detail.Contains("EOF", StringComparison.OrdinalIgnoreCase)
                || detail.Contains("reset", StringComparison.OrdinalIgnoreCase) || detail.Contains("HTTP/2", StringComparison.OrdinalIgnoreCase)
                || detail.Contains("handshake", StringComparison.OrdinalIgnoreCase) || detail.Contains("certificate", StringComparison.OrdinalIgnoreCase))
            {
                // Also what a coordinator restarting or a proxy resetting looks like: said as the likely cause, not the certain one.
                return $"certificate rejected (most likely): {server} closed the connection during or right after the TLS handshake, as when it refused our client certificate "
                    + $"({names.Certificate}: {Why}); else it was restarting or a proxy reset the connection ({Common.Contracts.ReportLimits.Cut(detail, 300)})";
            }
        }

        return $"{ex.StatusCode}: {Common.Contracts.ReportLimits.Cut(detail, 1000)}";
    }
}
