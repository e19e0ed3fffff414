using Toolforge.Agents.Common.Contracts;
using System.Text.RegularExpressions;
using Toolforge.Agents.Contracts.V1;

namespace Toolforge.Agents.Coordinator.Reports;

/// <summary>Checks an admin's build request before it is queued: image paths, tag, builder name.</summary>
internal static partial class BuildRequestValidator
{
    public const int MaxImages = 200;

    // \z, not $: $ also matches before a final "\n".
    [GeneratedRegex(@"^[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)*\z", RegexOptions.CultureInvariant)]
    private static partial Regex ImagePath();

    [GeneratedRegex(@"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\z", RegexOptions.CultureInvariant)]
    private static partial Regex Tag();

    /// <summary>Null when the request is acceptable, else "field: reason".</summary>
    public static string? Validate(RequestBuildRequest request)
    {
        if (request.Build is { Reason.Length: > 0 } withReason && ReasonProblem(withReason.Reason) is { } reasonProblem)
        {
            return reasonProblem;
        }

        if (request.Build is { SecurityRebuild: true } sr)
        {
            if (sr.Promote || sr.AllVerified || sr.Prune is not null || sr.Push || sr.NoCache || sr.Single || sr.Force || (sr.Tag.Length > 0 && sr.Tag != "testing"))
            {
                return "build.security_rebuild: it rebuilds without the cache and pushes testing by itself: tag, push, no_cache, single, force, promote, all_verified and prune must be unset";
            }

            if (string.IsNullOrWhiteSpace(sr.Reason))
            {
                return "build.reason: say why (a DSA number, \"scheduled\"): a security rebuild is recorded with its reason";
            }

            return ImagesProblem(request.Build) ?? BuilderProblem(request);
        }

        if (request.Build is { Prune: { } prune } pr)
        {
            if (pr.Promote || pr.AllVerified || pr.Push || pr.NoCache || pr.Single || pr.Force || (pr.Tag.Length > 0 && pr.Tag != "testing"))
            {
                return "build.prune: a prune builds and promotes nothing: tag, push, no_cache, single, force, promote and all_verified must be unset";
            }

            if (prune.Keep < 1 || prune.Keep > ImageResults.MaxKeep)
            {
                return $"build.prune.keep: keep 1 to {ImageResults.MaxKeep} history tags per repository (got {prune.Keep})";
            }

            if (!double.IsFinite(prune.KeepDays) || prune.KeepDays < 0 || prune.KeepDays > ImageResults.MaxKeepDays)
            {
                return $"build.prune.keep_days: 0 to {ImageResults.MaxKeepDays} days (got {prune.KeepDays})";
            }

            return ImagesProblem(request.Build) ?? BuilderProblem(request);
        }

        if (request.Build is { Promote: true } p)
        {
            if (p.Push || p.NoCache || p.Single || p.Force || (p.Tag.Length > 0 && p.Tag != "testing"))
            {
                return "build.promote: a promotion builds nothing: tag, push, no_cache, single and force must be unset";
            }

            if (p.AllVerified == (p.Images.Count > 0))
            {
                return "build.images: name the images to promote, or all_verified (not both)";
            }
        }
        else if (request.Build is { AllVerified: true })
        {
            return "build.all_verified: only with promote";
        }

        if (request.Build is null || (request.Build.Images.Count == 0 && !request.Build.AllVerified))
        {
            return "build.images: name at least one image path";
        }

        if (ImagesProblem(request.Build) is { } images)
        {
            return images;
        }

        if (request.Build.Tag.Length > 0 && !Tag().IsMatch(request.Build.Tag))
        {
            return $"build.tag: \"{Cut(request.Build.Tag)}\" is not a valid image tag";
        }

        if (request.Build.Tag == "latest")
        {
            // Issue 27: builds push testing; latest is moved only by promotion, to a verified testing digest.
            return "build.tag: latest comes only from promotion of a verified testing digest (toolforge-builder-agent promote); builds push testing";
        }

        return BuilderProblem(request);
    }

    private static string? ImagesProblem(BuildRequest build)
    {
        if (build.Images.Count > MaxImages)
        {
            return $"build.images: {build.Images.Count} images, at most {MaxImages} per build";
        }

        foreach (var image in build.Images)
        {
            if (image.Length > 200 || !ImagePath().IsMatch(image) || image.Contains("..", StringComparison.Ordinal))
            {
                return $"build.images: \"{Cut(image)}\" is not an image path such as python311-sssd/base";
            }
        }

        return null;
    }

    private static string? ReasonProblem(string reason) =>
        reason.Length > ImageResults.MaxReason ? $"build.reason: {reason.Length} characters, at most {ImageResults.MaxReason}"
        : reason.Any(c => char.IsControl(c) || char.GetUnicodeCategory(c) is System.Globalization.UnicodeCategory.Format or System.Globalization.UnicodeCategory.LineSeparator or System.Globalization.UnicodeCategory.ParagraphSeparator)
            ? "build.reason: control or format characters are not taken"
        : null;

    private static string? BuilderProblem(RequestBuildRequest request) =>
        request.Builder.Length > 0 && !ReportValidator.IsValidNodeName(request.Builder) ? $"builder: \"{Cut(request.Builder)}\" is not a host name" : null;

    private static string Cut(string s) => s.Length <= 60 ? s : s[..60] + "…";
}
