namespace Toolforge.Agents.LogShipper.Delivery;

/// <summary>A TLS file (CA bundle, certificate, key) of a destination cannot be used now; the shipper retries.</summary>
public sealed class TlsMaterialException(Destination destination, string what, string file, string reason, Exception? inner = null)
    : DeliveryException($"{destination}: cannot load the TLS {what} {file}: {reason}", inner)
{
    /// <summary>"CA bundle", "certificate" or "key".</summary>
    public string What { get; } = what;

    public string File { get; } = file;

    public string Reason { get; } = reason;
}
