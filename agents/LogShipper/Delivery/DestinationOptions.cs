using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.LogShipper.Delivery;

public sealed class DestinationOptions : IValidatedOptions
{
    /// <summary>
    /// relp://host:port (RELP, plaintext), relp+tls://host:port (RELP over TLS: acknowledged and authenticated),
    /// tcp://host:port (RFC 6587 octet counting) or tls://host:port (RFC 5425).
    /// </summary>
    public string Url { get; set; } = string.Empty;

    /// <summary>TLS: the CA bundle the receiver's certificate must chain to.</summary>
    public string CaBundle { get; set; } = string.Empty;

    /// <summary>TLS: our client certificate (the node's puppet certificate) and key; required for relp+tls.</summary>
    public string Certificate { get; set; } = string.Empty;

    public string Key { get; set; } = string.Empty;

    /// <summary>TLS: the name the receiver's certificate must carry. Empty: the host of <see cref="Url"/>.</summary>
    public string ServerName { get; set; } = string.Empty;

    public IEnumerable<string> Validate(string section)
    {
        if (Destination.TryParse(Url, out var d) is { } problem)
        {
            yield return $"{Check.Key(section, nameof(Url))}: {problem}";
            yield break;
        }

        if (d!.Kind is TransportKind.Tls or TransportKind.RelpTls)
        {
            foreach (var p in Check.FileExists(section, nameof(CaBundle), CaBundle))
            {
                yield return p;
            }

            // RELP over TLS authenticates both ends (rsyslog's tls.authmode="name" checks our certificate's name).
            if (d.Kind == TransportKind.RelpTls || Certificate.Length > 0 || Key.Length > 0)
            {
                foreach (var p in Check.FileExists(section, nameof(Certificate), Certificate).Concat(Check.FileExists(section, nameof(Key), Key)))
                {
                    yield return p;
                }
            }
        }
    }
}
