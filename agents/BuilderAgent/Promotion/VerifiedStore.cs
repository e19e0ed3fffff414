using System.Text.Json;
using System.Text.Json.Serialization;
using Toolforge.Agents.Common.Files;

namespace Toolforge.Agents.BuilderAgent.Promotion;

/// <summary>The verdict of one verify run: which digest of a repository's <c>testing</c>, passed or not, when and why.</summary>
public sealed record Verdict(string Digest, bool Passed, DateTimeOffset At, string Detail);

/// <summary>
/// The verdicts, one per repository (the last verify of its testing digest), in one JSON file replaced atomically
/// (<see cref="DurableFile"/>). Read, changed and written under an exclusive lock on <c>FILE.lock</c> (flock, taken
/// by .NET for <see cref="FileShare.None"/>), so the daemon and a `verify` on the command line never lose each other's
/// verdicts. A file that does not parse is an error said as such, never a silently empty store.
/// </summary>
public sealed class VerifiedStore(string path)
{
    public const long MaxBytes = 16 * 1024 * 1024;

    public string Path { get; } = path;

    /// <summary>The verdicts now (empty when no file is there yet).</summary>
    public IReadOnlyDictionary<string, Verdict> Read()
    {
        using var _ = Lock();
        return Load();
    }

    /// <summary>Records <paramref name="verdict"/> for <paramref name="repository"/> (registry/name, no tag).</summary>
    public void Record(string repository, Verdict verdict)
    {
        using var _ = Lock();
        var all = Load();
        all[repository] = verdict;
        var state = new VerifiedState { Images = all };
        try
        {
            DurableFile.Write(Path, JsonSerializer.SerializeToUtf8Bytes(state, VerifiedJson.Default.VerifiedState), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead);
            DurableFile.OwnLikeDirectory(Path); // a `verify` run as root leaves the file to the daemon's user
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // NotARegularFileException (an IOException) included: said as it is, in one line.
            throw new PromotionException($"cannot write the verdict file {Safe(Path)}: {Safe(ex.Message)}", ex);
        }
    }

    private Dictionary<string, Verdict> Load()
    {
        if (!File.Exists(Path))
        {
            return new Dictionary<string, Verdict>(StringComparer.Ordinal);
        }

        try
        {
            // Bounded as it is read (a FIFO or a file growing meanwhile cannot make it read without end).
            var (buffer, length) = BoundedFile.ReadBytes("the verdict file", Path, (int)MaxBytes);
            var state = JsonSerializer.Deserialize(buffer.AsSpan(0, length), VerifiedJson.Default.VerifiedState);
            return new Dictionary<string, Verdict>(state?.Images ?? [], StringComparer.Ordinal);
        }
        catch (InvalidDataException ex)
        {
            throw new PromotionException($"{Safe(Path)}: {Safe(ex.Message)}; move it aside", ex);
        }
        catch (JsonException ex)
        {
            throw new PromotionException($"{Safe(Path)} is not a verdict file ({Safe(ex.Message)}); move it aside and verify again");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new PromotionException($"cannot read the verdict file {Safe(Path)}: {Safe(ex.Message)} (a file written by root? give it to the daemon's user: chown it like its directory)", ex);
        }
    }

    private FileStream Lock()
    {
        var lockPath = Path + ".lock";
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            try
            {
                Directory.CreateDirectory(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(lockPath))!);
                var created = !File.Exists(lockPath);
                var stream = new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.None);
                if (created)
                {
                    try
                    {
                        DurableFile.OwnLikeDirectory(lockPath); // made by root: the daemon's user must still open it
                    }
                    catch
                    {
                        stream.Dispose();
                        throw;
                    }
                }

                return stream;
            }
            catch (IOException ex) when (ex.HResult == 11 && waited.Elapsed < TimeSpan.FromSeconds(10))
            {
                // another process is writing a verdict (milliseconds): wait for it, bounded
                Thread.Sleep(20);
            }
            catch (IOException ex) when (ex.HResult == 11)
            {
                throw new PromotionException($"{Safe(lockPath)} stayed locked for 10 s (another verify or promote is stuck?)");
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new PromotionException($"cannot lock {Safe(lockPath)}: {Safe(ex.Message)}");
            }
        }
    }

    private static string Safe(string s) => Common.Cli.Output.Escape(s.Length <= 300 ? s : s[..300] + "…");
}

public sealed class VerifiedState
{
    public Dictionary<string, Verdict> Images { get; set; } = [];
}

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(VerifiedState))]
internal sealed partial class VerifiedJson : JsonSerializerContext;
