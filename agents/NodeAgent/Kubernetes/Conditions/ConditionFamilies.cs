using System.IO.Enumeration;
using System.Text;
using System.Text.RegularExpressions;
using Toolforge.Agents.Contracts.V1;

namespace Toolforge.Agents.NodeAgent.Kubernetes.Conditions;

/// <summary>One problem family the agent owns on the Node: its condition type, the checks that feed it, the reason when all is well.</summary>
public sealed record ConditionFamily(string Key, string Type, IReadOnlyList<string> Sources, string HealthyReason);

/// <summary>What one family's checks say now: the status to write, reason and message.</summary>
public sealed record ConditionVerdict(string Type, bool Problem, string Reason, string Message);

/// <summary>
/// The condition types (the README's table) and how their checks combine: worst wins. Any source check failing
/// makes the condition True (reason from the first failing check by name, message listing every failing one); else,
/// once any source has a definite state (ok or warning), False with the family's healthy reason; while every source
/// is unknown or has not run, no verdict (the condition is left as the API has it, so a restart resets nothing).
/// A healthy verdict also waits until every source the agent runs has answered once (<c>notYetAnswered</c>): on a node
/// whose kubelet refuses /healthz, the unit check answering first must not write False for the healthz check to turn
/// True a moment later (a flip, and a reset transition time).
/// </summary>
public static partial class ConditionFamilies
{
    public const int MaxMessage = 1024;

    public static readonly IReadOnlyList<ConditionFamily> All =
    [
        new("KubeletUnhealthy", "KubeletUnhealthy", ["kubelet.unit", "kubelet.healthz", "journal.pleg-unhealthy"], "KubeletIsHealthy"),
        new("FrequentKubeletRestart", "FrequentKubeletRestart", ["kubelet.flapping"], "NoFrequentKubeletRestart"),
        new("ContainerRuntimeUnhealthy", "ContainerRuntimeUnhealthy", ["runtime.*", "containerd.unit", "docker.engine", "docker.unit", "journal.runtime-down"], "ContainerRuntimeIsHealthy"),
        new("KubeProxyRulesOutOfSync", "KubeProxyRulesOutOfSync", ["kube-proxy.*"], "KubeProxyRulesInSync"),
        new("KernelDeadlock", "KernelDeadlock", ["journal.hung-task"], "KernelHasNoDeadlock"),
        new("ReadonlyFilesystem", "ReadonlyFilesystem", ["journal.filesystem-error"], "FilesystemIsNotReadOnly"),
        new("StuckProcesses", "StuckProcesses", ["node.stuck-processes"], "NoStuckProcesses"),
    ];

    /// <summary>The families with the configured type names (prefix included); those configured "" are left out.</summary>
    public static List<ConditionFamily> Resolve(NodeConditionsOptions o) =>
        All.Select(f => f with { Type = o.Types.TryGetValue(f.Key, out var t) ? (t.Length == 0 ? string.Empty : o.Prefix + t) : o.Prefix + f.Type })
            .Where(f => f.Type.Length > 0).ToList();

    public static bool IsTypeName(string s) => TypeName().IsMatch(s);

    public static ConditionVerdict? Judge(ConditionFamily family, IEnumerable<CheckResult> checks, IReadOnlySet<string>? notYetAnswered = null)
    {
        var mine = checks.Where(c => family.Sources.Any(g => FileSystemName.MatchesSimpleExpression(g, c.Name, ignoreCase: false)))
            .OrderBy(c => c.Name, StringComparer.Ordinal).ToList();
        var failing = mine.Where(c => c.State == CheckState.Failing).ToList();
        if (failing.Count > 0)
        {
            return new ConditionVerdict(family.Type, true, Pascal(failing[0].Name) + "Failing",
                Bound(string.Join("; ", failing.Select(c => $"{c.Name}: {c.Message}"))));
        }

        var definite = mine.Where(c => c.State is CheckState.Ok or CheckState.Warning).ToList();
        if (definite.Count == 0 || (notYetAnswered?.Any(n => family.Sources.Any(g => FileSystemName.MatchesSimpleExpression(g, n, ignoreCase: false))) ?? false))
        {
            return null;
        }

        var warnings = definite.Where(c => c.State == CheckState.Warning).ToList();
        return new ConditionVerdict(family.Type, false, family.HealthyReason,
            Bound($"ok: {string.Join(", ", definite.Where(c => c.State == CheckState.Ok).Select(c => c.Name))}"
                + (warnings.Count > 0 ? $"; warning: {string.Join("; ", warnings.Select(c => $"{c.Name}: {c.Message}"))}" : string.Empty)));
    }

    /// <summary>"kube-proxy.nftables" → "KubeProxyNftables" (a CamelCase reason, as the API expects).</summary>
    public static string Pascal(string name)
    {
        var sb = new StringBuilder(name.Length);
        var upper = true;
        foreach (var c in name)
        {
            if (!char.IsAsciiLetterOrDigit(c))
            {
                upper = true;
                continue;
            }

            sb.Append(upper ? char.ToUpperInvariant(c) : c);
            upper = false;
        }

        return sb.Length > 0 && char.IsAsciiLetter(sb[0]) ? sb.ToString() : "Check" + sb;
    }

    // Messages come from checks that quote nodes' and tenants' strings: printable and bounded before the API sees them.
    public static string Bound(string s)
    {
        var clean = string.Concat(s.Select(c => char.IsControl(c) ? ' ' : c));
        return clean.Length <= MaxMessage ? clean : clean[..(MaxMessage - 1)] + "…";
    }

    [GeneratedRegex("^[A-Z][A-Za-z0-9]{0,62}\\z", RegexOptions.CultureInvariant)]
    private static partial Regex TypeName();
}
