using System.Diagnostics;
using Toolforge.Agents.BuilderAgent.Docker;
using Toolforge.Agents.BuilderAgent.Images;

namespace Toolforge.Agents.BuilderAgent.Build;

/// <summary>How a run builds: build.py's flags plus ours.</summary>
public sealed record BuildSettings(
    NamingOptions Naming,
    bool Push = false,
    bool NoCache = false,
    bool Pull = false,
    bool Force = false,
    bool PushSuccessful = false,
    int Jobs = 2,
    ImageSource? Source = null,
    Promotion.ImageVerifier? Verifier = null,
    Inventory.PackageInventory? Inventory = null,
    Func<string, string, CancellationToken, Task<string>>? TagHistory = null,
    PackageGate? Gate = null);

/// <summary>One image of a plan: what it is called, what it builds on, and whether it would be skipped.</summary>
public sealed record PlannedImage(string Path, string FullName, string? Parent, string From, BuildInputs? Inputs, bool? Unchanged, string? ExistingId, string? Problem = null);

/// <summary>What happened to one image.</summary>
public sealed record ImageReport(string Path, string Name, string Result, TimeSpan Duration, string Digest, string Error)
{
    /// <summary>The package inventory of the digest pushed, when one was taken (issue 27).</summary>
    public Inventory.ImageInventory? Inventory { get; init; }

    /// <summary>A prune's result: the digests it deleted from the repository (issue 27).</summary>
    public IReadOnlyList<string> Deleted { get; init; } = [];

    /// <summary>The image repository's commit it was built from (its revision label), when built now from a known commit.</summary>
    public string Revision { get; init; } = string.Empty;

    public bool Ok => Common.Contracts.ImageResults.IsOk(Result);

    /// <summary>A security rebuild's image not pushed: its package set is testing's (issue 27).</summary>
    public const string SamePackages = Common.Contracts.ImageResults.SamePackages;

    /// <summary>A security rebuild's image not pushed: neither it nor testing has a dpkg database, and its parent was not pushed.</summary>
    public const string NoPackages = Common.Contracts.ImageResults.NoPackages;
}

/// <summary>Where a run's output goes: every line carries the image it is about.</summary>
public interface IBuildLog
{
    void Line(string image, string text);

    void Result(ImageReport report) { }
}

/// <summary>
/// Runs a plan: independent branches in parallel (up to Jobs at once), each chain in order; a failed image
/// skips only its descendants; unchanged images (same input hash as the existing image's label) are not rebuilt
/// unless forced; pushes come last and are not made when anything failed (unless PushSuccessful).
/// </summary>
public sealed class BuildRunner(BuilderDocker docker, ImageGraph graph, BuildSettings settings, IBuildLog log, TimeProvider? time = null)
{
    private readonly TimeProvider _time = time ?? TimeProvider.System;

    /// <summary>The plan for these images in build order, with each image's skip prediction (needs Docker).</summary>
    public async Task<IReadOnlyList<PlannedImage>> PlanAsync(IReadOnlyList<string> order, CancellationToken ct)
    {
        var planned = new List<PlannedImage>();
        var inPlan = order.ToHashSet(StringComparer.Ordinal);
        var unchanged = new Dictionary<string, bool?>(StringComparer.Ordinal);
        foreach (var path in order)
        {
            var image = graph[path];
            var name = settings.Naming.FullName(path);
            BuildInputs inputs;
            try
            {
                inputs = BuildInputs.Collect(graph.Root, image.Dockerfile, Path.Combine(graph.Root, image.Folder.DockerfilePath));
            }
            catch (RepositoryException ex)
            {
                // The build of this image will fail with this; the plan still shows the lineage.
                unchanged[path] = null;
                planned.Add(new PlannedImage(path, name, image.ParentPath, image.From, null, null, null, ex.Message));
                continue;
            }

            var existing = await docker.InspectImageAsync(name, ct).ConfigureAwait(false);
            bool? same;
            if (settings.Force || settings.NoCache || existing is null)
            {
                same = false;
            }
            else if (image.ParentPath is { } p && inPlan.Contains(p) && unchanged[p] != true)
            {
                same = false; // the parent is rebuilt, so this image is too
            }
            else
            {
                var parentIdentity = await ParentIdentityAsync(image, ct).ConfigureAwait(false);
                same = existing.Value.Labels.TryGetValue(BuildInputs.HashLabel, out var h) && h == inputs.Hash(parentIdentity);
            }

            unchanged[path] = same;
            planned.Add(new PlannedImage(path, name, image.ParentPath, image.From, inputs, same, existing?.Id));
        }

        return planned;
    }

    /// <summary>Builds (and pushes) the plan; returns a report per image in plan order.</summary>
    public async Task<IReadOnlyList<ImageReport>> RunAsync(IReadOnlyList<PlannedImage> plan, CancellationToken ct)
    {
        var reports = new Dictionary<string, ImageReport>(StringComparer.Ordinal);
        var tasks = new Dictionary<string, Task<ImageReport>>(StringComparer.Ordinal);
        using var slots = new SemaphoreSlim(Math.Max(1, settings.Jobs));
        foreach (var item in plan)
        {
            var parentTask = item.Parent is { } p && tasks.TryGetValue(p, out var t) ? t : null;
            tasks[item.Path] = RunOneAsync(item, parentTask, slots, ct);
        }

        foreach (var item in plan)
        {
            reports[item.Path] = await tasks[item.Path].ConfigureAwait(false);
        }

        if (settings.Push)
        {
            var failed = reports.Values.Count(r => !r.Ok);
            if (failed > 0 && !settings.PushSuccessful)
            {
                log.Line("*", $"not pushing anything: {failed} image(s) did not build (--push-successful pushes the rest)");
            }
            else
            {
                foreach (var item in plan.Where(i => reports[i.Path].Ok))
                {
                    if (settings.Gate is not null)
                    {
                        if (reports[item.Path].Result is ImageReport.SamePackages or ImageReport.NoPackages)
                        {
                            continue; // not pushed: said when it was judged
                        }

                        // Built on a parent of this rebuild that did not reach the registry: pushing it would publish a base
                        // the registry does not have.
                        if (item.Parent is { } parent && reports.TryGetValue(parent, out var p) && p.Result is not ("pushed" or ImageReport.SamePackages or ImageReport.NoPackages))
                        {
                            reports[item.Path] = reports[item.Path] with { Result = "push-failed", Error = $"its parent {parent} was not pushed ({p.Result})" };
                            log.Line(item.Path, $"NOT PUSHED: its parent {parent} was not pushed ({p.Result})");
                            log.Result(reports[item.Path]);
                            continue;
                        }
                    }

                    reports[item.Path] = await PushOneAsync(item, reports[item.Path], ct).ConfigureAwait(false);
                    log.Result(reports[item.Path]);
                }
            }
        }

        return plan.Select(i => reports[i.Path]).ToList();
    }

    private async Task<ImageReport> RunOneAsync(PlannedImage item, Task<ImageReport>? parent, SemaphoreSlim slots, CancellationToken ct)
    {
        await Task.Yield();
        var p = parent is null ? null : await parent.ConfigureAwait(false);
        if (p is not null)
        {
            if (!p.Ok)
            {
                var skipped = new ImageReport(item.Path, item.FullName, "skipped", TimeSpan.Zero, string.Empty, $"parent {p.Path} {p.Result}");
                log.Line(item.Path, $"skipped: parent {p.Path} {p.Result}");
                log.Result(skipped);
                return skipped;
            }
        }

        if (item.Inputs is null)
        {
            var bad = new ImageReport(item.Path, item.FullName, "failed", TimeSpan.Zero, string.Empty, item.Problem ?? "no build inputs");
            log.Line(item.Path, $"FAILED: {bad.Error}");
            log.Result(bad);
            return bad;
        }

        await slots.WaitAsync(ct).ConfigureAwait(false);
        var sw = Stopwatch.StartNew();
        try
        {
            var image = graph[item.Path];
            var parentIdentity = await ParentIdentityAsync(image, ct).ConfigureAwait(false);
            var hash = item.Inputs.Hash(parentIdentity);
            if (!settings.Force && !settings.NoCache)
            {
                var existing = await docker.InspectImageAsync(item.FullName, ct).ConfigureAwait(false);
                if (existing is { } e && e.Labels.TryGetValue(BuildInputs.HashLabel, out var h) && h == hash)
                {
                    log.Line(item.Path, $"unchanged since the last build ({hash[..19]}…): not rebuilt");
                    var same = new ImageReport(item.Path, item.FullName, "unchanged", sw.Elapsed, e.Id, string.Empty);
                    log.Result(same);
                    return same;
                }
            }

            log.Line(item.Path, $"building {item.FullName}");
            await using var context = await item.Inputs.ContextTarAsync(ct).ConfigureAwait(false);
            // A judged checkout's commit is this image's only while its files are still the commit's (read after the context was).
            var source = settings.Source;
            if (source is { Files: not null } && !Git.CheckoutRevision.StillMatches(source, item.Inputs.Root, item.Inputs.Files))
            {
                log.Line(item.Path, $"its files are no longer those of commit {source.Revision[..12]}: no revision");
                source = null;
            }

            var labels = OciLabels.For(source, _time.GetUtcNow());
            labels[BuildInputs.HashLabel] = hash;
            // A security rebuild pulls the tree's own bases (a root's FROM) again: their packages are what it is for.
            var id = await docker.BuildAsync(context, item.FullName, BuildInputs.DockerfileInContext, labels,
                settings.NoCache, settings.Pull || (settings.Gate is not null && item.Parent is null), line => log.Line(item.Path, line), ct).ConfigureAwait(false);
            var built = new ImageReport(item.Path, item.FullName, "built", sw.Elapsed, id, string.Empty) { Revision = source?.Revision ?? string.Empty };
            log.Line(item.Path, $"built {item.FullName} ({id}) in {sw.Elapsed.TotalSeconds:0.0}s");
            if (settings.Gate is { } gate)
            {
                built = await GateAfterBuildAsync(gate, item, built, parentPushes: p?.Result == "built", ct).ConfigureAwait(false); // "built" under the gate: to be pushed
            }

            log.Result(built);
            return built;
        }
        catch (Exception ex) when (ex is DockerOperationException or RepositoryException or IOException)
        {
            var failed = new ImageReport(item.Path, item.FullName, "failed", sw.Elapsed, string.Empty, ex.Message);
            log.Line(item.Path, $"FAILED: {ex.Message}");
            log.Result(failed);
            return failed;
        }
        finally
        {
            slots.Release();
        }
    }

    // A security rebuild (issue 27), right after an image is built and before anything builds on it: the report that
    // stands — built (to be pushed), same-packages / no-packages (not pushed; the local tag put back on testing's image,
    // so children build on what the registry has), or push-failed when the sets could not be compared (never pushed on a
    // guess; its descendants are skipped).
    private async Task<ImageReport> GateAfterBuildAsync(PackageGate gate, PlannedImage item, ImageReport built, bool parentPushes, CancellationToken ct)
    {
        try
        {
            var decision = await gate.DecideAsync(item.Path, built.Digest, parentPushes, ct).ConfigureAwait(false);
            if (decision.Push)
            {
                log.Line(item.Path, $"to be pushed: {decision.Why}");
                return built;
            }

            log.Line(item.Path, $"not pushed: {decision.Why}; {item.FullName} is {Promotion.TagPolicy.Testing}'s image again here, for what builds on it");
            return built with { Result = decision.NoPackages ? ImageReport.NoPackages : ImageReport.SamePackages, Digest = decision.Testing ?? built.Digest, Revision = string.Empty }; // testing's digest: not this commit's build
        }
        catch (Exception ex) when (ex is not OperationCanceledException and not OutOfMemoryException)
        {
            var message = Promotion.RegistryClient.Safe(ex.Message);
            log.Line(item.Path, $"NOT PUSHED: the package sets could not be compared: {message}");
            return built with { Result = "push-failed", Error = $"the package sets could not be compared: {message}" };
        }
    }

    private async Task<ImageReport> PushOneAsync(PlannedImage item, ImageReport built, CancellationToken ct)
    {
        var sw = Stopwatch.StartNew();
        try
        {
            log.Line(item.Path, $"pushing {item.FullName}");
            var digest = await docker.PushAsync(settings.Naming.Repository(item.Path), settings.Naming.Tag, line => log.Line(item.Path, line), ct).ConfigureAwait(false);
            log.Line(item.Path, $"pushed {item.FullName} {digest}");
            await TagHistoryAsync(item, digest, ct).ConfigureAwait(false);
            await VerifyPushedAsync(item, digest, ct).ConfigureAwait(false);
            var inventory = await InventoryPushedAsync(item, digest, ct).ConfigureAwait(false);
            return built with { Result = "pushed", Digest = digest.Length > 0 ? digest : built.Digest, Duration = built.Duration + sw.Elapsed, Inventory = inventory };
        }
        catch (DockerOperationException ex)
        {
            log.Line(item.Path, $"PUSH FAILED: {ex.Message}");
            return built with { Result = "push-failed", Error = ex.Message, Duration = built.Duration + sw.Elapsed };
        }
    }

    // The daemon's history tag of the digest just pushed (issue 27: what `agentctl images prune --keep N` counts). Like the
    // verify, it does not change the image's result: the push happened; a digest without one is never pruned.
    private async Task TagHistoryAsync(PlannedImage item, string digest, CancellationToken ct)
    {
        if (settings.TagHistory is not { } tagHistory || digest.Length == 0)
        {
            return;
        }

        try
        {
            log.Line(item.Path, $"history tag {await tagHistory(item.Path, digest, ct).ConfigureAwait(false)} → {digest}");
        }
        catch (Exception ex) when (ex is Promotion.PromotionException or ArgumentException)
        {
            log.Line(item.Path, $"HISTORY TAG NOT WRITTEN: {Promotion.RegistryClient.Safe(ex.Message)} (prune leaves this digest alone: it counts only history tags)");
        }
    }

    // The probe on the digest just pushed (the daemon's builds of testing): its verdict is a line of the build's log and
    // a record for `promote`. It does not change the image's result: the push happened; promote refuses what failed.
    private async Task VerifyPushedAsync(PlannedImage item, string digest, CancellationToken ct)
    {
        if (settings.Verifier is not { } verifier)
        {
            return;
        }

        try
        {
            var r = await verifier.VerifyAsync(item.Path, digest.Length > 0 ? digest : null, ct).ConfigureAwait(false);
            log.Line(item.Path, r.Passed ? $"verified {r.Digest}: {r.Detail}" : $"VERIFY FAILED {(r.Digest.Length > 0 ? r.Digest : "-")}: {r.Detail} (promote refuses it)");
        }
        catch (Exception ex) when (ex is Promotion.PromotionException or Common.Files.NotARegularFileException or IOException or UnauthorizedAccessException)
        {
            log.Line(item.Path, $"VERIFY NOT RUN: {Promotion.RegistryClient.Safe(ex.Message)} (promote refuses it until `verify` passes)");
        }
    }

    // The package inventory of the digest just pushed (issue 27): a line of the build's log. Like the verify, it does not
    // change the image's result: the push happened.
    private async Task<Inventory.ImageInventory?> InventoryPushedAsync(PlannedImage item, string digest, CancellationToken ct)
    {
        if (settings.Inventory is not { } inventory || digest.Length == 0)
        {
            return null;
        }

        Inventory.ImageInventory r;
        try
        {
            r = await inventory.TakeAsync(settings.Naming.Repository(item.Path), digest, ct).ConfigureAwait(false);
        }
        catch (Inventory.InventoryException ex)
        {
            log.Line(item.Path, $"INVENTORY NOT TAKEN: {ex.Message}");
            return null;
        }
        catch (Exception ex) when (ex is not OperationCanceledException and not OutOfMemoryException)
        {
            // Anything else (a torn tar stream, an answer of an unexpected shape): said, and the push stands.
            log.Line(item.Path, $"INVENTORY NOT TAKEN: {ex.GetType().Name}: {Promotion.RegistryClient.Safe(ex.Message)}");
            return null;
        }

        var taken = $"inventory of {digest}: {r.Packages.Count} Debian package(s){(r.Language.Count > 0 ? $", {r.Language.Count} language package(s) from {r.Language.Select(p => p.LockFile).Distinct().Count()} lock file(s)" : string.Empty)}"
            + (r.LanguageSkipped > 0 ? $" ({r.LanguageSkipped} lock file entr(ies) skipped: a version in no form taken, such as a git or file dependency)" : string.Empty)
            + (r.LanguageProblem is { } lp ? $"; LANGUAGE PACKAGES NOT TAKEN: {lp}" : string.Empty)
            + $", CycloneDX {Inventory.CycloneDx.SpecVersion} ({r.Document.Length} bytes)";
        try
        {
            var artifact = await inventory.PublishAsync(r, ct).ConfigureAwait(false);
            log.Line(item.Path, taken + (artifact is null ? string.Empty : $", kept beside the image as {artifact} (tag {Inventory.OciReferrers.FallbackTag(digest)})"));
        }
        catch (Inventory.InventoryException ex)
        {
            log.Line(item.Path, $"{taken}; NOT KEPT IN THE REGISTRY: {ex.Message}");
        }
        catch (Exception ex) when (ex is not OperationCanceledException and not OutOfMemoryException)
        {
            log.Line(item.Path, $"{taken}; NOT KEPT IN THE REGISTRY: {ex.GetType().Name}: {Promotion.RegistryClient.Safe(ex.Message)}");
        }

        return r; // the coordinator hears of it either way
    }

    // What the image builds on: the parent's image ID, or the external base as named (with its local ID if present).
    private async Task<string> ParentIdentityAsync(ImageDefinition image, CancellationToken ct)
    {
        if (image.ParentPath is { } p)
        {
            var parent = await docker.InspectImageAsync(settings.Naming.FullName(p), ct).ConfigureAwait(false);
            return parent?.Id ?? "missing:" + settings.Naming.FullName(p);
        }

        if (image.From.Equals("scratch", StringComparison.OrdinalIgnoreCase))
        {
            return "scratch";
        }

        var external = await docker.InspectImageAsync(image.From, ct).ConfigureAwait(false);
        return external is { } e ? $"{image.From}@{e.Id}" : image.From;
    }
}
