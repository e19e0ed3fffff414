using System.Text;
using Toolforge.Agents.Common.Contracts;
using Toolforge.Agents.Contracts.V1;

namespace Toolforge.Agents.Common.Reporting;

/// <summary>
/// Makes a report fit <see cref="ReportLimits"/> before it is sent: strings are cut with a visible marker, names that
/// the coordinator would refuse are made valid, and findings beyond the cap are replaced by one
/// <c>findings-truncated</c> finding that says how many were cut. What comes out is always accepted, whatever the
/// tenants put in their images or their processes' names.
/// </summary>
public static class ReportFitter
{
    public const string TruncatedKind = "findings-truncated";

    /// <summary>Fits <paramref name="report"/> in place; returns how many findings were dropped.</summary>
    public static int Fit(ReportRequest report)
    {
        report.AgentVersion = ReportLimits.Cut(report.AgentVersion, ReportLimits.MaxAgentVersion);

        var names = new HashSet<string>(StringComparer.Ordinal);
        var checks = new List<CheckResult>(report.Checks.Count);
        foreach (var c in report.Checks)
        {
            c.Name = CheckName(c.Name);
            if (checks.Count >= ReportLimits.MaxChecks || !names.Add(c.Name))
            {
                continue;
            }

            if (c.State is CheckState.Unspecified || !Enum.IsDefined(c.State))
            {
                c.State = CheckState.Unknown;
            }

            c.Message = ReportLimits.Cut(c.Message, ReportLimits.MaxMessage);
            FitDetails(c.Details);
            FitValues(c.Values);

            checks.Add(c);
        }

        report.Checks.Clear();
        report.Checks.AddRange(checks);

        var dropped = 0;
        if (report.Findings.Count > ReportLimits.MaxFindings)
        {
            dropped = report.Findings.Count - (ReportLimits.MaxFindings - 1);
            var kept = report.Findings.Take(ReportLimits.MaxFindings - 1).ToList();
            var byKind = report.Findings.Skip(ReportLimits.MaxFindings - 1).GroupBy(f => f.Kind)
                .OrderByDescending(g => g.Count()).Take(5).Select(g => $"{g.Count()} {g.Key}");
            report.Findings.Clear();
            report.Findings.AddRange(kept);
            report.Findings.Add(new Finding
            {
                Kind = TruncatedKind,
                Subject = "report",
                Severity = Severity.Warning,
                Check = kept.Count > 0 ? kept[^1].Check : string.Empty,
                Message = $"{dropped} more findings were not sent: a report carries at most {ReportLimits.MaxFindings} ({string.Join(", ", byKind)})",
            });
        }

        foreach (var f in report.Findings)
        {
            f.Kind = Kind(f.Kind);
            f.Subject = f.Subject.Length == 0 ? "-" : ReportLimits.Cut(f.Subject, ReportLimits.MaxSubject);
            f.Message = ReportLimits.Cut(f.Message, ReportLimits.MaxMessage);
            f.Check = f.Check.Length == 0 ? string.Empty : CheckName(f.Check);
            if (f.Severity is Severity.Unspecified || !Enum.IsDefined(f.Severity))
            {
                f.Severity = Severity.Warning;
            }
            FitDetails(f.Details);
        }

        while (report.Events.Count > ReportLimits.MaxEvents)
        {
            report.Events.RemoveAt(report.Events.Count - 1);
        }

        foreach (var e in report.Events)
        {
            e.Kind = Kind(e.Kind);
            e.Message = ReportLimits.Cut(e.Message, ReportLimits.MaxMessage);
            FitDetails(e.Details);
        }

        return dropped;
    }

    // Keys 1 to 64 characters, finite numbers only (NaN and infinities say nothing an admin can use), at most 32.
    private static void FitValues(IDictionary<string, double> values)
    {
        if (values.Count == 0)
        {
            return;
        }

        var fitted = values
            .Where(kv => kv.Key.Length > 0 && double.IsFinite(kv.Value))
            .OrderBy(kv => kv.Key, StringComparer.Ordinal)
            .Select(kv => (Key: ReportLimits.Cut(kv.Key, ReportLimits.MaxDetailKey), kv.Value))
            .DistinctBy(kv => kv.Key, StringComparer.Ordinal)
            .Take(ReportLimits.MaxDetails)
            .ToList();
        values.Clear();
        foreach (var (k, v) in fitted)
        {
            values[k] = v;
        }
    }

    private static void FitDetails(IDictionary<string, string> details)
    {
        if (details.Count == 0)
        {
            return;
        }

        var fitted = details
            .Where(kv => kv.Key.Length > 0)
            .Select(kv => (Key: ReportLimits.Cut(kv.Key, ReportLimits.MaxDetailKey), Value: ReportLimits.Cut(kv.Value, ReportLimits.MaxDetailValue)))
            .DistinctBy(kv => kv.Key, StringComparer.Ordinal)
            .Take(ReportLimits.MaxDetails)
            .ToList();
        details.Clear();
        foreach (var (k, v) in fitted)
        {
            details[k] = v;
        }
    }

    /// <summary>A check name the coordinator takes: [A-Za-z0-9] then [A-Za-z0-9._/:-], at most 128.</summary>
    public static string CheckName(string name)
    {
        var sb = new StringBuilder(Math.Min(name.Length, ReportLimits.MaxCheckName));
        foreach (var ch in name)
        {
            if (sb.Length == ReportLimits.MaxCheckName)
            {
                break;
            }

            var ok = char.IsAsciiLetterOrDigit(ch) || (sb.Length > 0 && ch is '.' or '_' or '/' or ':' or '-');
            sb.Append(ok ? ch : '_');
        }

        if (sb.Length == 0 || !char.IsAsciiLetterOrDigit(sb[0]))
        {
            sb.Insert(0, 'x');
            if (sb.Length > ReportLimits.MaxCheckName)
            {
                sb.Length = ReportLimits.MaxCheckName;
            }
        }

        return sb.ToString();
    }

    /// <summary>A finding or event kind the coordinator takes: [a-z0-9] then [a-z0-9-], at most 64.</summary>
    public static string Kind(string kind)
    {
        var sb = new StringBuilder(Math.Min(kind.Length, ReportLimits.MaxKind));
        foreach (var c in kind.ToLowerInvariant())
        {
            if (sb.Length == ReportLimits.MaxKind)
            {
                break;
            }

            sb.Append(char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || (sb.Length > 0 && c == '-') ? c : '-');
        }

        if (sb.Length == 0 || sb[0] == '-')
        {
            sb.Insert(0, 'x');
            if (sb.Length > ReportLimits.MaxKind)
            {
                sb.Length = ReportLimits.MaxKind;
            }
        }

        return sb.ToString();
    }
}
