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
    /// <summary>
    /// Null when every inventory of <paramref name="progress"/> is of an image this build pushed (a result "pushed" of
    /// that path and digest, in this call or an earlier one: <paramref name="build"/> is the build with this call
    /// applied) to that repository (the result's name without its tag); else the first one that is not, in one line.
    /// A builder cannot plant or wipe the packages of an image it did not push.
    /// </summary>
    public static string? NotPushedHere(CommandProgress progress, Build build)
    {
        if (progress.Images.Any(i => i.Deleted.Count > 0) && build.Request?.Prune is not { DryRun: false })
        {
            return "images[].deleted: only a prune that is not a dry run deletes digests; nothing of this call was stored";
        }

        if (progress.Inventories.Count > 0 && build.Request?.Push != true && build.Request?.SecurityRebuild != true) // a security rebuild pushes by itself
        {
            return "inventories: this build was not asked to push, so it has no pushed image to describe; nothing of this call was stored";
        }

        for (var i = 0; i < progress.Inventories.Count; i++)
        {
            var inv = progress.Inventories[i];
            var pushed = build.Images.FirstOrDefault(r => r.Result == "pushed" && r.Path == inv.Path && r.Digest == inv.Digest);
            if (pushed is null)
            {
                return $"inventories[{i}]: {Common.Cli.Output.Escape(inv.Path)} {inv.Digest} is not an image this build pushed; nothing of this call was stored";
            }

            if (Repository(pushed.Name) != inv.Repository)
            {
                return $"inventories[{i}].repository: {Common.Cli.Output.Escape(ReportLimits.Cut(inv.Repository, 200))} is not where this build pushed {Common.Cli.Output.Escape(inv.Path)} ({Common.Cli.Output.Escape(ReportLimits.Cut(Repository(pushed.Name), 200))}); nothing of this call was stored";
            }
        }

        return null;
    }

    /// <summary>"registry/path:tag" or "registry/path@sha256:…" → "registry/path" (a registry's port is kept).</summary>
    public static string Repository(string name)
    {
        var at = name.IndexOf('@', StringComparison.Ordinal);
        if (at >= 0)
        {
            name = name[..at];
        }

        var colon = name.LastIndexOf(':');
        return colon > name.LastIndexOf('/') ? name[..colon] : name;
    }

    public static string? Problem(CommandProgress progress)
    {
        for (var i = 0; i < progress.Images.Count; i++)
        {
            var deleted = progress.Images[i].Deleted;
            if (deleted.Count > ImageResults.MaxDeletedPerResult)
            {
                return $"images[{i}].deleted: at most {ImageResults.MaxDeletedPerResult} digests (got {deleted.Count})";
            }

            if (deleted.Count > 0 && (progress.Images[i].Name.Length is 0 or > ReportLimits.MaxSubject || !progress.Images[i].Name.All(c => c is > ' ' and < '\u007f')))
            {
                return $"images[{i}].name: a prune's repository, 1 to {ReportLimits.MaxSubject} printable ASCII characters without spaces";
            }

            for (var k = 0; k < deleted.Count; k++)
            {
                if (!IsDigest(deleted[k]))
                {
                    return $"images[{i}].deleted[{k}]: not sha256:<64 hex digits>";
                }
            }
        }

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

            var seen = new HashSet<(string, string, string)>();
            for (var k = 0; k < inv.Packages.Count; k++)
            {
                var p = inv.Packages[k];
                var language = p.Name.Contains(':', StringComparison.Ordinal);
                if (language && (!LanguagePackages.IsName(p.Name) || !LanguagePackages.IsVersion(p.Version) || p.Architecture.Length > 0))
                {
                    return $"{where}.packages[{k}]: not a language package (ECOSYSTEM:NAME of {string.Join(", ", LanguagePackages.Ecosystems)}, a version, no architecture)";
                }

                if (!language && (!DebianPackages.IsName(p.Name) || !DebianPackages.IsVersion(p.Version) || !DebianPackages.IsArchitecture(p.Architecture)))
                {
                    return $"{where}.packages[{k}]: not a Debian package name, version and architecture (name 2 to {ReportLimits.MaxPackageName} of a-z 0-9 + - .; version up to {ReportLimits.MaxPackageVersion} of A-Z a-z 0-9 . + - ~ :; architecture up to {ReportLimits.MaxPackageArchitecture} of a-z 0-9 -)";
                }

                // A Debian package once per architecture; a language package once per version (a lock file may pin two).
                if (!seen.Add((p.Name, p.Architecture, language ? p.Version : string.Empty)))
                {
                    return $"{where}.packages[{k}]: {p.Name}{(language ? "@" + p.Version : ":" + p.Architecture)} is listed twice";
                }
            }
        }

        return null;
    }

    public static bool IsDigest(string s) =>
        s.Length == 71 && s.StartsWith("sha256:", StringComparison.Ordinal) && s.AsSpan(7).IndexOfAnyExcept("0123456789abcdef") < 0;
}
