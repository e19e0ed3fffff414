namespace Toolforge.Agents.BuilderAgent.Git;

/// <summary>The one sequence the command line and the daemon run: fetch, refuse a dirty or diverged checkout, fast-forward, list what changed.</summary>
public static class GitSync
{
    /// <summary>
    /// What comes before an update, for the command line and the daemon alike: the checkout cloned when it is absent
    /// and <see cref="GitCheckout.Remote"/> is a URL (the daemon's own checkout), checked to be a work tree, locked
    /// against the other of the two (<see cref="CheckoutLock"/>, held until the build is marked), and a stale
    /// <c>index.lock</c> cleared where this program alone works (a checkout it cloned). Notes say what was done.
    /// </summary>
    public static async Task<(CheckoutLock Lock, IReadOnlyList<string> Notes)> BeginAsync(GitCheckout checkout, TimeProvider time, CancellationToken ct)
    {
        var notes = new List<string>();
        if (await checkout.CloneIfAbsentAsync(ct).ConfigureAwait(false))
        {
            notes.Add($"cloned {checkout.Upstream} into {GitRunner.Safe(checkout.Path)}");
        }

        await checkout.CheckWorkTreeAsync(ct).ConfigureAwait(false);
        var gitDirectory = await checkout.GitDirectoryAsync(ct).ConfigureAwait(false);
        var held = CheckoutLock.Take(checkout.Path, gitDirectory);
        try
        {
            // Older than a git command may run: no git of ours runs now (the lock), so it was killed.
            if (GitCheckout.ClearStaleIndexLock(checkout.Path, gitDirectory, checkout.CommandTimeout,
                    owned: File.Exists(Path.Combine(gitDirectory, GitCheckout.ClonedMarker)), time.GetUtcNow()) is { } cleared)
            {
                notes.Add(cleared);
            }
        }
        catch
        {
            held.Dispose();
            throw;
        }

        return (held, notes);
    }

    public static async Task<GitUpdate> UpdateAsync(GitCheckout checkout, string? since, CancellationToken ct)
    {
        await checkout.CheckWorkTreeAsync(ct).ConfigureAwait(false);
        var before = await checkout.HeadAsync(ct).ConfigureAwait(false);
        var upstream = await checkout.FetchAsync(ct).ConfigureAwait(false);
        string? from = null;
        if (since is not null)
        {
            // After the fetch, so a commit only the remote had is known; before anything moves.
            from = await checkout.ResolveAsync(since, ct).ConfigureAwait(false)
                ?? throw new GitException($"--since: \"{GitRunner.Safe(since, 60)}\" names no commit in {GitRunner.Safe(checkout.Path)}", badInput: true);
        }

        await checkout.RefuseDirtyOrDivergedAsync(upstream, ct).ConfigureAwait(false);
        if (before != upstream)
        {
            await checkout.FastForwardAsync(upstream, ct).ConfigureAwait(false);
        }

        var after = await checkout.HeadAsync(ct).ConfigureAwait(false);
        if (from is null)
        {
            from = await checkout.BuiltAsync(ct).ConfigureAwait(false);
            if (from is null)
            {
                // The first update of this checkout: HEAD before the fetch is the baseline, remembered now, so changes a
                // failed first build leaves behind (Docker down, an image failing) are still counted the next time.
                from = before;
                await checkout.MarkBuiltAsync(before, ct).ConfigureAwait(false);
            }
        }
        var changed = from == after ? [] : await checkout.ChangedAsync(from, after, ct).ConfigureAwait(false);
        return new GitUpdate(before, after, from, changed, await checkout.SourceUrlAsync(ct).ConfigureAwait(false));
    }

    /// <summary>The lines that say what an update selected: where the checkout is, each image with its reason, what was ignored.</summary>
    public static IEnumerable<string> Describe(GitCheckout checkout, GitUpdate update, ChangeSelection selection)
    {
        yield return update.FastForwarded
            ? $"git: {checkout.Upstream} is at {GitUpdate.Short(update.After)}; fast-forwarded from {GitUpdate.Short(update.Before)}"
            : $"git: {checkout.Upstream} is at {GitUpdate.Short(update.After)}; the checkout was up to date";
        yield return update.Since == update.After
            ? $"git: nothing changed since {GitUpdate.Short(update.Since)}"
            : $"git: {update.Changed.Count} path(s) changed since {GitUpdate.Short(update.Since)}; {selection.Images.Count} image(s) to build";
        foreach (var image in selection.Images)
        {
            yield return $"  {GitRunner.Safe(image.Path)}: {GitRunner.Safe(image.Reason.ToString())}{(image.DirectReasons.Count > 1 ? $" (+{image.DirectReasons.Count - 1} more)" : string.Empty)}";
        }

        if (selection.Unmatched.Count > 0)
        {
            yield return $"git: {selection.Unmatched.Count} changed path(s) no image uses: {string.Join(", ", selection.Unmatched.Take(GitCheckout.Named).Select(p => GitRunner.Safe(p, 120)))}"
                + (selection.Unmatched.Count > GitCheckout.Named ? $" and {selection.Unmatched.Count - GitCheckout.Named} more" : string.Empty);
        }
    }
}
