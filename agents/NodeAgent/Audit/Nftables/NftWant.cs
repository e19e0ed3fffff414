using Toolforge.Agents.NodeAgent.Audit.KubeProxy;

namespace Toolforge.Agents.NodeAgent.Audit.Nftables;

/// <summary>One map element kube-proxy should have: in <see cref="Map"/>, <see cref="Key"/> → <see cref="Verdict"/>, for a destination of a Service port.</summary>
internal sealed record NftWant(string Map, string Key, string Verdict, string Spn, ServiceDestination What);
