namespace Toolforge.Agents.NodeAgent.Audit.Iptables;

/// <summary>
/// Where a rule sends from: an IPv4 address (canonical dotted quad) as its number, "*" (any local address: node
/// ports) as -1, anything else (IPv6) as a name id above 2^40 (<see cref="NatKeys.AddressKey(NameTable, string)"/>);
/// the protocol's name id; the port.
/// </summary>
internal readonly record struct DestKey(long Address, int Protocol, int Port);
