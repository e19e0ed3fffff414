namespace Toolforge.Agents.NodeAgent.Audit.Nftables;

/// <summary>A Service port's service- or local- chain and the endpoint- chains its numgen must pick among.</summary>
internal sealed record NftChainBackends(string Spn, string Chain, HashSet<string> EndpointChains);
