using Toolforge.Agents.Contracts.V1;

namespace Toolforge.Agents.Common.Checks;

/// <summary>
/// Details a check result may carry that change how it is judged. A check that does not apply on this host (the
/// kubelet checks on a builder) is state unknown with <c>not-applicable: true</c>: shown, but it fails neither
/// `check` nor the node's state.
/// </summary>
public static class CheckDetails
{
    public const string NotApplicableKey = "not-applicable";

    public static readonly IReadOnlyDictionary<string, string> NotApplicable = new Dictionary<string, string> { [NotApplicableKey] = "true" };

    public static bool IsNotApplicable(CheckResult c) =>
        c.State == CheckState.Unknown && c.Details.TryGetValue(NotApplicableKey, out var v) && v == "true";
}
