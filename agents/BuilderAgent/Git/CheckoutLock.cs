namespace Toolforge.Agents.BuilderAgent.Git;

/// <summary>
/// Who updates and builds from a checkout now: the daemon's poll or one `build --from-git`, never two at once (a
/// fast-forward under a running build changes its files; two marks of the last commit built race). An exclusive,
/// non-blocking lock (flock, which .NET takes for <see cref="FileShare.None"/> on Linux) on
/// <c>.git/toolforge-builder.lock</c>: it ends with the process, so a killed build leaves no stale lock behind.
/// </summary>
public sealed class CheckoutLock : IDisposable
{
    public const string FileName = "toolforge-builder.lock";

    // flock(LOCK_EX | LOCK_NB) refused because another process holds it: EWOULDBLOCK, as .NET reports it on Linux.
    private const int EWouldBlock = 11;

    private readonly FileStream _file;

    private CheckoutLock(FileStream file) => _file = file;

    /// <summary>Takes the lock of the checkout whose git directory is <paramref name="gitDirectory"/>, or says who may hold it.</summary>
    public static CheckoutLock Take(string checkout, string gitDirectory) => TakeFile(checkout, Path.Combine(gitDirectory, FileName));

    /// <summary>The same lock on another file: <c>CHECKOUT.lock</c> beside a checkout being cloned (it has no .git yet).</summary>
    public static CheckoutLock TakeFile(string checkout, string path)
    {
        try
        {
            return new CheckoutLock(new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.None));
        }
        catch (IOException ex) when (ex.HResult == EWouldBlock)
        {
            throw new GitException($"{GitRunner.Safe(checkout)} is being updated or built from git by another process (the daemon's poll, or a `build --from-git`: {GitRunner.Safe(path)} is locked); try again when it ends");
        }
        catch (IOException ex)
        {
            // Not the lock held elsewhere: a read-only file system (the unit's /srv), no space, an I/O error. Said as it is.
            throw new GitException($"cannot lock {GitRunner.Safe(path)}: {GitRunner.Safe(ex.Message)} (updating a checkout from git needs one this process may write: under the daemon's unit, Builder:Git:Checkout in /var/lib/toolforge-builder-agent)");
        }
        catch (UnauthorizedAccessException ex)
        {
            throw new GitException($"{GitRunner.Safe(checkout)} is not writable by this process ({GitRunner.Safe(ex.Message)}): updating it from git needs a checkout it may write (under the daemon's unit: Builder:Git:Checkout in /var/lib/toolforge-builder-agent)");
        }
    }

    public void Dispose() => _file.Dispose();
}
