using System.Text.RegularExpressions;

namespace Toolforge.Agents.Coordinator.Security;

/// <summary>
/// Who may be what, from the coordinator's configuration: admins, viewers, builders, the node patterns, the deny-list
/// and the report rate. Immutable: a reload (SIGHUP) builds a new one and swaps it in whole.
/// </summary>
public sealed class SecurityPolicy
{
    private readonly HashSet<string> _admins;
    private readonly HashSet<string> _viewers;
    private readonly HashSet<string> _builders;
    private readonly Regex[] _nodes;

    public SecurityPolicy(SecurityOptions o)
    {
        _admins = Set(o.Admins);
        _viewers = Set(o.Viewers);
        _builders = Set(o.Builders);
        _nodes = o.Nodes.Select(Glob).ToArray();
        Denied = new DenyList(o.DeniedCertificates);
        ReportRate = o.ReportRate;
        ReportBurst = o.ReportBurst;
    }

    public DenyList Denied { get; }

    public double ReportRate { get; }

    public int ReportBurst { get; }

    /// <summary>
    /// The roles of <paramref name="identity"/> (lower-case). Admins and viewers are never agents. With node patterns
    /// configured, a node is an identity that matches one; without, any identity in no other role. A builder may also
    /// report as a log-shipper: every host ships its journal, the builder host too.
    /// </summary>
    public Roles RolesOf(string identity)
    {
        if (_admins.Contains(identity))
        {
            return Roles.Admin | Roles.Viewer;
        }

        if (_viewers.Contains(identity))
        {
            return Roles.Viewer;
        }

        var roles = _builders.Contains(identity) ? Roles.Builder : Roles.None;
        var node = _nodes.Length > 0 ? _nodes.Any(p => p.IsMatch(identity)) : roles == Roles.None;
        return node ? roles | Roles.Node : roles;
    }

    /// <summary>A glob of host names: '*' is any run of characters but '.', '?' one such character.</summary>
    public static Regex Glob(string pattern) => new(
        "^" + Regex.Escape(pattern.Trim().ToLowerInvariant()).Replace(@"\*", "[^.]*", StringComparison.Ordinal).Replace(@"\?", "[^.]", StringComparison.Ordinal) + @"\z",
        RegexOptions.CultureInvariant, TimeSpan.FromMilliseconds(100));

    private static HashSet<string> Set(IEnumerable<string> names) =>
        names.Select(n => n.Trim().ToLowerInvariant()).Where(n => n.Length > 0).ToHashSet(StringComparer.Ordinal);
}
