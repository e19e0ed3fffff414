using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.LogShipper;

public enum TransportKind
{
    Relp,
    RelpTls,
    Tcp,
    Tls,
}
