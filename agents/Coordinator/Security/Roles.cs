namespace Toolforge.Agents.Coordinator.Security;

/// <summary>What an identity may be. An identity can hold several (a builder host also ships its journal).</summary>
[Flags]
public enum Roles
{
    None = 0,

    /// <summary>Reads nodes, findings, builds; watches.</summary>
    Viewer = 1,

    /// <summary>Reads; requests and cancels builds, forgets nodes, acknowledges findings (all audited).</summary>
    Admin = 2,

    /// <summary>Acts as the builder-agent: command stream, builder reports, build progress.</summary>
    Builder = 4,

    /// <summary>Reports as node-agent and log-shipper for its own node.</summary>
    Node = 8,
}
