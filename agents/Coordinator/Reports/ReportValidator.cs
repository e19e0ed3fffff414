using System.Text.RegularExpressions;
using Toolforge.Agents.Common.Contracts;
using Toolforge.Agents.Contracts.V1;

namespace Toolforge.Agents.Coordinator.Reports;

/// <summary>
/// Checks a report before anything of it is stored. Returns null when acceptable, else the first problem as
/// "field: reason" (e.g. "checks[3].name: empty"), which the agent receives with INVALID_ARGUMENT.
/// </summary>
internal static partial class ReportValidator
{
    private const int MaxChecks = ReportLimits.MaxChecks;
    private const int MaxFindings = ReportLimits.MaxFindings;
    private const int MaxEvents = ReportLimits.MaxEvents;
    private const int MaxMessage = ReportLimits.MaxMessage;
    private const int MaxDetails = ReportLimits.MaxDetails;
    private const int MaxDetailValue = ReportLimits.MaxDetailValue;

    // \z, not $: $ also matches before a final "\n", which would let "worker-1\n" through as a host name.
    [GeneratedRegex(@"^[a-z0-9]([a-z0-9._-]{0,251}[a-z0-9])?\z", RegexOptions.CultureInvariant)]
    private static partial Regex NodeName();

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9._/:-]{0,127}\z", RegexOptions.CultureInvariant)]
    private static partial Regex CheckName();

    [GeneratedRegex(@"^[a-z0-9][a-z0-9-]{0,63}\z", RegexOptions.CultureInvariant)]
    private static partial Regex Kind();

    public static bool IsValidNodeName(string name) => NodeName().IsMatch(name);

    public static string? Validate(ReportRequest r)
    {
        if (!NodeName().IsMatch(r.Node))
        {
            return $"node: \"{Cut(r.Node)}\" is not a host name (lower-case letters, digits, '.', '-', at most 253)";
        }

        if (r.Agent is AgentKind.Unspecified || !System.Enum.IsDefined(r.Agent))
        {
            return $"agent: {r.Agent} is not a known agent kind";
        }

        if (r.AgentVersion.Length > ReportLimits.MaxAgentVersion)
        {
            return "agent_version: longer than 64 characters";
        }

        if (r.Checks.Count > MaxChecks)
        {
            return $"checks: {r.Checks.Count} checks, at most {MaxChecks} allowed";
        }

        if (r.Findings.Count > MaxFindings)
        {
            return $"findings: {r.Findings.Count} findings, at most {MaxFindings} allowed";
        }

        if (r.Events.Count > MaxEvents)
        {
            return $"events: {r.Events.Count} events, at most {MaxEvents} allowed";
        }

        var names = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < r.Checks.Count; i++)
        {
            var c = r.Checks[i];
            var at = $"checks[{i}]";
            if (!CheckName().IsMatch(c.Name))
            {
                return $"{at}.name: \"{Cut(c.Name)}\" is not a check name (letters, digits, . _ / : -, at most 128)";
            }

            if (!names.Add(c.Name))
            {
                return $"{at}.name: \"{c.Name}\" appears twice";
            }

            if (c.State is CheckState.Unspecified || !System.Enum.IsDefined(c.State))
            {
                return $"{at}.state: {c.State} is not a check state";
            }

            if (Problem(at, c.Message, c.Details) is { } p)
            {
                return p;
            }

            if (c.Values.Count > MaxDetails)
            {
                return $"{at}.values: more than {MaxDetails} entries";
            }

            foreach (var (k, v) in c.Values)
            {
                if (k.Length is 0 or > ReportLimits.MaxDetailKey)
                {
                    return $"{at}.values[\"{Cut(k)}\"]: keys must be 1 to {ReportLimits.MaxDetailKey} characters";
                }

                if (!double.IsFinite(v))
                {
                    return $"{at}.values[\"{Cut(k)}\"]: {v.ToString(System.Globalization.CultureInfo.InvariantCulture)} is not a finite number";
                }
            }
        }

        for (var i = 0; i < r.Findings.Count; i++)
        {
            var f = r.Findings[i];
            var at = $"findings[{i}]";
            if (!Kind().IsMatch(f.Kind))
            {
                return $"{at}.kind: \"{Cut(f.Kind)}\" is not a finding kind (lower-case letters, digits, '-')";
            }

            if (f.Subject.Length is 0 or > ReportLimits.MaxSubject)
            {
                return $"{at}.subject: must be 1 to 512 characters";
            }

            if (f.Severity is Severity.Unspecified || !System.Enum.IsDefined(f.Severity))
            {
                return $"{at}.severity: {f.Severity} is not a severity (info, warning, error)";
            }

            if (f.Check.Length > 0 && !CheckName().IsMatch(f.Check))
            {
                return $"{at}.check: \"{Cut(f.Check)}\" is not a check name (letters, digits, . _ / : -, at most 128)";
            }

            if (Problem(at, f.Message, f.Details) is { } p)
            {
                return p;
            }
        }

        for (var i = 0; i < r.Events.Count; i++)
        {
            var e = r.Events[i];
            var at = $"events[{i}]";
            if (!Kind().IsMatch(e.Kind))
            {
                return $"{at}.kind: \"{Cut(e.Kind)}\" is not an event kind";
            }

            if (Problem(at, e.Message, e.Details) is { } p)
            {
                return p;
            }
        }

        return Images(r);
    }

    // Issue 27: the images a node's runtime holds — a node-agent's only, bounded, each name in its one form.
    private static string? Images(ReportRequest r)
    {
        if (r.Images.Count > 0 && r.Agent != AgentKind.Node)
        {
            return "images: only a node-agent reports images";
        }

        if (r.Images.Count > 0 && r.ImagesAt is null)
        {
            return "images: listed without images_at";
        }

        if (r.Images.Count > ReportLimits.MaxNodeImages)
        {
            return $"images: {r.Images.Count} images, at most {ReportLimits.MaxNodeImages} allowed";
        }

        if ((r.PodDigests.Count > 0 || r.PodsAt is not null || r.RunsPods) && (r.Agent != AgentKind.Node || r.ImagesAt is null))
        {
            return r.Agent != AgentKind.Node ? "pod_digests: only a node-agent reports images" : "pod_digests: listed without images_at";
        }

        if (r.PodDigests.Count > 0 && r.PodsAt is null)
        {
            return "pod_digests: listed without pods_at";
        }

        if (r.PodDigests.Count > ReportLimits.MaxNodeImages)
        {
            return $"pod_digests: {r.PodDigests.Count} digests, at most {ReportLimits.MaxNodeImages} allowed";
        }

        for (var i = 0; i < r.PodDigests.Count; i++)
        {
            if (!NodeImageNames.IsRepoDigestEntry(r.PodDigests[i]))
            {
                return $"pod_digests[{i}]: \"{Cut(r.PodDigests[i])}\" is not a repo digest (registry/path@sha256:<64 hex>, lower case, or sha256:<64 hex> alone)";
            }
        }

        for (var i = 0; i < r.Images.Count; i++)
        {
            var image = r.Images[i];
            if (!NodeImageNames.IsImageId(image.Id))
            {
                return $"images[{i}].id: \"{Cut(image.Id)}\" is not an image id (sha256:<64 hex>)";
            }

            if (image.RepoDigests.Count > ReportLimits.MaxRepoDigestsPerImage)
            {
                return $"images[{i}].repo_digests: {image.RepoDigests.Count}, at most {ReportLimits.MaxRepoDigestsPerImage} allowed";
            }

            for (var j = 0; j < image.RepoDigests.Count; j++)
            {
                if (!NodeImageNames.IsRepoDigestEntry(image.RepoDigests[j]))
                {
                    return $"images[{i}].repo_digests[{j}]: \"{Cut(image.RepoDigests[j])}\" is not a repo digest (registry/path@sha256:<64 hex>, lower case, or sha256:<64 hex> alone)";
                }
            }
        }

        return null;
    }

    private static string? Problem(string at, string message, IDictionary<string, string> details)
    {
        if (message.Length > MaxMessage)
        {
            return $"{at}.message: {message.Length} characters, at most {MaxMessage} allowed";
        }

        if (details.Count > MaxDetails)
        {
            return $"{at}.details: {details.Count} entries, at most {MaxDetails} allowed";
        }

        foreach (var (k, v) in details)
        {
            if (k.Length is 0 or > ReportLimits.MaxDetailKey || v.Length > MaxDetailValue)
            {
                return $"{at}.details[\"{Cut(k)}\"]: keys must be 1 to 64 characters and values at most {MaxDetailValue}";
            }
        }

        return null;
    }

    private static string Cut(string s) => Common.Cli.Output.Escape(s.Length <= 40 ? s : s[..40] + "…"); // a refused name reaches logs and the agent: escaped
}
