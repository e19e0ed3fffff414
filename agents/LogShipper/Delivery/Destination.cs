using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.LogShipper.Delivery;

/// <summary>A parsed destination URL.</summary>
public sealed record Destination(TransportKind Kind, string Host, int Port)
{
    public static string? TryParse(string url, out Destination? d)
    {
        d = null;
        if (!Uri.TryCreate(url, UriKind.Absolute, out var u) || u.Port <= 0 || u.Host.Length == 0)
        {
            return $"\"{url}\" is not relp://host:port, relp+tls://host:port, tcp://host:port or tls://host:port";
        }

        TransportKind? kind = u.Scheme switch
        {
            "relp" => TransportKind.Relp,
            "relp+tls" => TransportKind.RelpTls,
            "tcp" => TransportKind.Tcp,
            "tls" => TransportKind.Tls,
            _ => null,
        };
        if (kind is null)
        {
            return $"\"{url}\": unknown scheme {u.Scheme} (relp, relp+tls, tcp or tls)";
        }

        d = new Destination(kind.Value, u.Host, u.Port);
        return null;
    }

    public override string ToString() => $"{Scheme}://{Host}:{Port}";

    public string Scheme => Kind switch
    {
        TransportKind.Relp => "relp",
        TransportKind.RelpTls => "relp+tls",
        TransportKind.Tcp => "tcp",
        _ => "tls",
    };
}
