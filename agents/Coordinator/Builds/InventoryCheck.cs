using Toolforge.Agents.Common.Contracts;
using Toolforge.Agents.Contracts.V1;

namespace Toolforge.Agents.Coordinator.Builds;

/// <summary>
/// The image inventories of a build's progress (issue 27) are outside input like the rest of it: their number, each
/// digest's form, and every package's name, version and architecture (<see cref="DebianPackages"/>) are checked
/// before anything is stored; the first problem is the one line of the refusal.
/// </summary>
public static class InventoryCheck
{
    public static string? Problem(CommandProgress progress)
    {
        if (progress.Inventories.Count > ReportLimits.MaxInventoriesPerProgress)
        {
            return $"inventories: at most {ReportLimits.MaxInventoriesPerProgress} per call (got {progress.Inventories.Count})";
        }

        for (var i = 0; i < progress.Inventories.Count; i++)
        {
            var inv = progress.Inventories[i];
            var where = $"inventories[{i}]";
            if (inv.Repository.Length is 0 or > ReportLimits.MaxSubject || !inv.Repository.All(c => c is > ' ' and < '\u007f'))
            {
                return $"{where}.repository: 1 to {ReportLimits.MaxSubject} printable ASCII characters without spaces";
            }

            if (!IsDigest(inv.Digest))
            {
                return $"{where}.digest: not sha256:<64 hex digits>";
            }

            if (inv.Path.Length > ReportLimits.MaxImagePath || !inv.Path.All(c => c is > ' ' and < '\u007f'))
            {
                return $"{where}.path: at most {ReportLimits.MaxImagePath} printable ASCII characters without spaces";
            }

            if (inv.Packages.Count > ReportLimits.MaxPackagesPerImage)
            {
                return $"{where}.packages: at most {ReportLimits.MaxPackagesPerImage} (got {inv.Packages.Count})";
            }

            var seen = new HashSet<(string, string)>();
            for (var k = 0; k < inv.Packages.Count; k++)
            {
                var p = inv.Packages[k];
                if (!DebianPackages.IsName(p.Name) || !DebianPackages.IsVersion(p.Version) || !DebianPackages.IsArchitecture(p.Architecture))
                {
                    return $"{where}.packages[{k}]: not a Debian package name, version and architecture (name 2 to {ReportLimits.MaxPackageName} of a-z 0-9 + - .; version up to {ReportLimits.MaxPackageVersion} of A-Z a-z 0-9 . + - ~ :; architecture up to {ReportLimits.MaxPackageArchitecture} of a-z 0-9 -)";
                }

                if (!seen.Add((p.Name, p.Architecture)))
                {
                    return $"{where}.packages[{k}]: {p.Name}:{p.Architecture} is listed twice";
                }
            }
        }

        return null;
    }

    public static bool IsDigest(string s) =>
        s.Length == 71 && s.StartsWith("sha256:", StringComparison.Ordinal) && s.AsSpan(7).IndexOfAnyExcept("0123456789abcdef") < 0;
}
