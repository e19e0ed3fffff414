using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.LogShipper.Delivery;

public enum TransportKind
{
    Relp,
    RelpTls,
    Tcp,
    Tls,
}
