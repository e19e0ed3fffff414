using System.Net.Http;
using System.Text;
using System.Text.Json;
using Docker.DotNet;
using Docker.DotNet.Models;

namespace Toolforge.Agents.BuilderAgent.Docker;

/// <summary>A failure reported by the Docker Engine, including errors that arrive inside a 200 stream.</summary>
public sealed class DockerOperationException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>Registry credentials, from the builder's config or the docker CLI's config.json.</summary>
public sealed record RegistryCredential(string Username, string Password);

/// <summary>
/// The Engine API operations the builder needs, each with a deadline: short calls (inspect, tag, list, remove)
/// use <see cref="CallTimeout"/>; builds and pushes stream for as long as <see cref="BuildTimeout"/> allows.
/// Uses Docker.DotNet.Enhanced: the maintained fork, whose build call sends <c>pull</c> (Docker.DotNet 3.125
/// sends <c>pullparent</c>, which the daemon ignores, so <c>--pull</c> would silently do nothing).
/// </summary>
public sealed class BuilderDocker : IDisposable
{
    private readonly DockerClient _short;
    private readonly DockerClient _long;

    public BuilderDocker(string endpoint, TimeSpan callTimeout, TimeSpan buildTimeout, IReadOnlyDictionary<string, RegistryCredential>? credentials = null)
    {
        Endpoint = endpoint;
        CallTimeout = callTimeout;
        BuildTimeout = buildTimeout;
        var uri = new Uri(endpoint);
        _short = new DockerClientBuilder().WithEndpoint(uri).WithTimeout(callTimeout).Build();
        _long = new DockerClientBuilder().WithEndpoint(uri).WithTimeout(Timeout.InfiniteTimeSpan).Build();
        Credentials = credentials ?? new Dictionary<string, RegistryCredential>();
    }

    public string Endpoint { get; }

    public TimeSpan CallTimeout { get; }

    public TimeSpan BuildTimeout { get; }

    public IReadOnlyDictionary<string, RegistryCredential> Credentials { get; }

    private async Task<T> Call<T>(string what, Func<CancellationToken, Task<T>> call, CancellationToken ct, TimeSpan? timeout = null)
    {
        var limit = timeout ?? CallTimeout;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(limit);
        try
        {
            return await call(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new DockerOperationException($"{what}: Docker at {Endpoint} did not answer within {limit.TotalSeconds:0}s");
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or System.Net.Sockets.SocketException)
        {
            throw new DockerOperationException($"{what}: {Common.Checks.PeerErrors.Describe(ex, "Docker", "dockerd", Endpoint).Message}", ex);
        }
        catch (DockerApiException ex) when (ex is not DockerImageNotFoundException and not DockerContainerNotFoundException)
        {
            throw new DockerOperationException($"{what}: {ex.ResponseBody?.Trim() ?? ex.Message}", ex);
        }
    }

    public Task PingAsync(CancellationToken ct) => Call("ping", async t => { await _short.System.PingAsync(t).ConfigureAwait(false); return true; }, ct);

    /// <summary>The image's ID and labels, or null when there is no such image.</summary>
    public async Task<(string Id, IDictionary<string, string> Labels)?> InspectImageAsync(string name, CancellationToken ct)
    {
        try
        {
            var r = await Call($"inspect {name}", t => _short.Images.InspectImageAsync(name, t), ct).ConfigureAwait(false);
            return (r.ID, r.Config?.Labels ?? new Dictionary<string, string>());
        }
        catch (DockerImageNotFoundException)
        {
            return null;
        }
    }

    /// <summary>Builds; every line of output goes to <paramref name="log"/>. An error in the stream is an error.</summary>
    public async Task<string> BuildAsync(Stream context, string tag, string dockerfile, IDictionary<string, string> labels,
        bool noCache, bool pull, Action<string> log, CancellationToken ct)
    {
        // A build reuses untagged images as its cache (an earlier stage, an intermediate of the cache chain, created
        // whenever): the hygiene's prune waits for it (not the sweep of the builder's containers: a build makes none).
        await _imageGate.WaitAsync(ct).ConfigureAwait(false);
        Interlocked.Increment(ref _building);
        _imageGate.Release();
        try
        {
            return await BuildHeldAsync(context, tag, dockerfile, labels, noCache, pull, log, ct).ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Decrement(ref _building);
        }
    }

    private int _building;

    private async Task<string> BuildHeldAsync(Stream context, string tag, string dockerfile, IDictionary<string, string> labels,
        bool noCache, bool pull, Action<string> log, CancellationToken ct)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(BuildTimeout);
        string? error = null;
        string? builtId = null;
        var pending = new StringBuilder();
        var progress = new Progress(m =>
        {
            if (m.Error is { } e)
            {
                error ??= (e.Message ?? "unknown error").Trim();
                log("ERROR: " + error);
            }

            if (m.Stream is { Length: > 0 } s)
            {
                pending.Append(s);
                FlushLines(pending, log);
            }
            else if (m.Status is { Length: > 0 } status)
            {
                log(m.ID is { Length: > 0 } id ? $"{id}: {status}" : status);
            }

            if (m.Aux is { } aux && aux.ExtensionData?.TryGetValue("ID", out var idValue) == true)
            {
                builtId = idValue?.ToString();
            }
        });
        try
        {
            await _long.Images.BuildImageFromDockerfileAsync(new ImageBuildParameters
            {
                Dockerfile = dockerfile,
                Tags = [tag],
                Labels = labels,
                NoCache = noCache,
                Pull = pull ? "1" : null,
                Remove = true,
                ForceRemove = true,
            }, context, null, null, progress, cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new DockerOperationException($"build of {tag} did not finish within {BuildTimeout}");
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or DockerApiException)
        {
            throw new DockerOperationException($"build of {tag} failed: {(ex as DockerApiException)?.ResponseBody?.Trim() ?? ex.GetBaseException().Message}", ex);
        }

        if (pending.Length > 0)
        {
            log(pending.ToString().TrimEnd('\n'));
        }

        if (error is not null)
        {
            throw new DockerOperationException($"build of {tag} failed: {error}");
        }

        var inspected = await InspectImageAsync(tag, ct).ConfigureAwait(false)
            ?? throw new DockerOperationException($"build of {tag} reported success but no image {tag} exists");
        return builtId ?? inspected.Id;
    }

    /// <summary>Pushes; returns the manifest digest. An error in the stream is an error.</summary>
    public async Task<string> PushAsync(string repository, string tag, Action<string> log, CancellationToken ct)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(BuildTimeout);
        string? error = null;
        string? digest = null;
        var progress = new Progress(m =>
        {
            if (m.Error is { } e)
            {
                error ??= (e.Message ?? "unknown error").Trim();
            }
            else if (m.Status is { Length: > 0 } status && m.Progress is null)
            {
                log(m.ID is { Length: > 0 } id ? $"{id}: {status}" : status);
            }

            if (m.Aux?.ExtensionData?.TryGetValue("Digest", out var d) == true)
            {
                digest = d?.ToString();
            }
        });
        var registry = repository.Split('/')[0];
        var auth = Credentials.TryGetValue(registry, out var c)
            ? new AuthConfig { Username = c.Username, Password = c.Password, ServerAddress = registry }
            : new AuthConfig();
        try
        {
            await _long.Images.PushImageAsync(repository, new ImagePushParameters { Tag = tag }, auth, progress, cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new DockerOperationException($"push of {repository}:{tag} did not finish within {BuildTimeout}");
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or DockerApiException)
        {
            throw new DockerOperationException($"push of {repository}:{tag} failed: {(ex as DockerApiException)?.ResponseBody?.Trim() ?? ex.GetBaseException().Message}", ex);
        }

        if (error is not null)
        {
            throw new DockerOperationException($"push of {repository}:{tag} failed: {error}");
        }

        return digest ?? string.Empty;
    }

    /// <summary>Makes <paramref name="reference"/> (repository@digest) present in the engine: pulled by digest when it is not.</summary>
    public async Task EnsureImageAsync(string repository, string digest, CancellationToken ct)
    {
        if (await InspectImageAsync($"{repository}@{digest}", ct).ConfigureAwait(false) is not null)
        {
            return;
        }

        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(BuildTimeout);
        string? error = null;
        var progress = new Progress(m => error ??= m.Error?.Message?.Trim());
        try
        {
            await _long.Images.CreateImageAsync(new ImagesCreateParameters { FromImage = repository, Tag = digest }, Auth(repository), progress, cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new DockerOperationException($"pull of {repository}@{digest} did not finish within {BuildTimeout}");
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or DockerApiException)
        {
            throw new DockerOperationException($"pull of {repository}@{digest} failed: {(ex as DockerApiException)?.ResponseBody?.Trim() ?? ex.GetBaseException().Message}", ex);
        }

        if (error is not null)
        {
            throw new DockerOperationException($"pull of {repository}@{digest} failed: {error}");
        }
    }

    /// <summary>The most processes a verify probe may run.</summary>
    public const long ProbePids = 256;

    /// <summary>The most memory a verify probe may use: 1 GiB.</summary>
    public const long ProbeMemoryBytes = 1L << 30;

    /// <summary>
    /// Runs <paramref name="command"/> in a new container of <paramref name="image"/> (no network, no capability, no
    /// privilege gain, at most <see cref="ProbePids"/> processes and <see cref="ProbeMemoryBytes"/>; a terminal so the
    /// output is plain lines) and waits up to <paramref name="timeout"/>; the container is removed in every case.
    /// Returns the exit code (null when the deadline passed and it was killed) and the last lines of its output.
    /// </summary>
    public async Task<(long? ExitCode, IReadOnlyList<string> Tail)> RunProbeAsync(string image, IList<string> command, TimeSpan timeout, CancellationToken ct)
    {
        var created = await Call($"create a container of {image}", t => _short.Containers.CreateContainerAsync(new CreateContainerParameters
        {
            Image = image,
            Cmd = command,
            Tty = true,
            Labels = new Dictionary<string, string> { [VerifyLabel] = "1" },
            // An image's probe runs untrusted code on the builder host: no network, no capability, no privilege gain,
            // and bounded processes and memory, so a broken image or a fork bomb cannot take the host down.
            HostConfig = new HostConfig
            {
                NetworkMode = "none",
                CapDrop = ["ALL"],
                SecurityOpt = ["no-new-privileges"],
                PidsLimit = ProbePids,
                Memory = ProbeMemoryBytes,
            },
        }, t), ct).ConfigureAwait(false);
        var id = created.ID;
        try
        {
            await Call($"start the probe of {image}", t => _short.Containers.StartContainerAsync(id, new ContainerStartParameters(), t), ct).ConfigureAwait(false);
            long? exit;
            using (var cts = CancellationTokenSource.CreateLinkedTokenSource(ct))
            {
                cts.CancelAfter(timeout);
                try
                {
                    exit = (await _long.Containers.WaitContainerAsync(id, cts.Token).ConfigureAwait(false)).StatusCode;
                }
                catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                {
                    exit = null; // the deadline passed: killed below by the forced removal
                }
                catch (Exception ex) when (ex is HttpRequestException or IOException or DockerApiException)
                {
                    throw new DockerOperationException($"waiting for the probe of {image}: {(ex as DockerApiException)?.ResponseBody?.Trim() ?? ex.GetBaseException().Message}", ex);
                }
            }

            var tail = new List<string>();
            if (exit is not null)
            {
                await Call($"read the probe's output of {image}", async t =>
                {
                    await _short.Containers.GetContainerLogsAsync(id, new ContainerLogsParameters { ShowStdout = true, ShowStderr = true, Tail = "5" }, new LineProgress(tail), t).ConfigureAwait(false);
                    return true;
                }, ct).ConfigureAwait(false);
            }

            return (exit, tail);
        }
        finally
        {
            // In every case, the cancelled one too (a fresh deadline, not the caller's token): no probe container is left behind.
            using var cleanup = new CancellationTokenSource(CallTimeout);
            try
            {
                await _short.Containers.RemoveContainerAsync(id, new ContainerRemoveParameters { Force = true }, cleanup.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is HttpRequestException or IOException or DockerApiException or OperationCanceledException)
            {
                ProbeLeftBehind?.Invoke(id, ex.GetBaseException().Message);
            }
        }
    }

    /// <summary>
    /// The regular files at <paramref name="paths"/> (a file, or a directory's files one level down) inside
    /// <paramref name="image"/>, read without running anything: a container is created (never started), each path is
    /// copied out through the Engine API's archive endpoint and read as tar, and the container is removed in every case.
    /// A path the image does not have is left out. At most <paramref name="maxBytes"/> in all (more is an error, read no
    /// further); each call within <see cref="CallTimeout"/>, the reading of its stream included. With
    /// <paramref name="firstFound"/>, the paths are alternatives: the first the image has is read, the rest not asked.
    /// </summary>
    public async Task<IReadOnlyList<(string File, byte[] Contents)>> ReadImageFilesAsync(string image, IReadOnlyList<string> paths, long maxBytes, CancellationToken ct, bool firstFound = false)
    {
        var created = await Call($"create a container of {image} to read its files", t => _short.Containers.CreateContainerAsync(new CreateContainerParameters
        {
            Image = image,
            Entrypoint = ["/toolforge-builder-inventory"], // never started; an image without CMD could not be created without one
            Cmd = [],
            NetworkDisabled = true,
            Labels = new Dictionary<string, string> { [InventoryLabel] = "1" },
            HostConfig = new HostConfig { NetworkMode = "none" },
        }, t), ct).ConfigureAwait(false);
        var id = created.ID;
        try
        {
            var files = new List<(string, byte[])>();
            long total = 0;
            foreach (var path in paths)
            {
                var read = await Call($"copy {path} out of {image}", async t =>
                {
                    ContainerArchiveResponse archive;
                    try
                    {
                        archive = await _short.Containers.GetArchiveFromContainerAsync(id, new ContainerPathStatParameters { Path = path }, false, t).ConfigureAwait(false);
                    }
                    catch (DockerContainerNotFoundException ex) when (!ex.Message.Contains("No such container", StringComparison.OrdinalIgnoreCase))
                    {
                        return []; // the image has no such path (a 404 about the path, not about our container)
                    }
                    catch (DockerContainerNotFoundException)
                    {
                        // The container we made has gone (removed under us): nothing can be said of the image's files.
                        throw new DockerOperationException($"copy {path} out of {image}: the container made to read it was removed meanwhile");
                    }

                    await using var stream = archive.Stream ?? throw new DockerOperationException($"copy {path} out of {image}: Docker answered without an archive");
                    return await ReadTarAsync(stream, path, maxBytes - total, t).ConfigureAwait(false);
                }, ct).ConfigureAwait(false);
                foreach (var f in read)
                {
                    total += f.Contents.Length;
                    files.Add(f);
                }

                if (firstFound && read.Count > 0)
                {
                    break;
                }
            }

            return files;
        }
        finally
        {
            using var cleanup = new CancellationTokenSource(CallTimeout);
            try
            {
                await _short.Containers.RemoveContainerAsync(id, new ContainerRemoveParameters { Force = true }, cleanup.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is HttpRequestException or IOException or DockerApiException or OperationCanceledException)
            {
                ProbeLeftBehind?.Invoke(id, ex.GetBaseException().Message);
            }
        }
    }

    /// <summary>Entries of one copied path at most (distroless: two files a package; 20,000 packages).</summary>
    public const int MaxTarEntries = 50_000;

    // The regular files of a tar stream, each named "path-asked/relative", at most `budget` bytes in all.
    private static async Task<List<(string File, byte[] Contents)>> ReadTarAsync(Stream stream, string asked, long budget, CancellationToken ct)
    {
        var files = new List<(string, byte[])>();
        await using var tar = new System.Formats.Tar.TarReader(stream, leaveOpen: true);
        var parent = asked.TrimEnd('/');
        parent = parent[..(parent.LastIndexOf('/') + 1)];
        var entries = 0;
        while (await tar.GetNextEntryAsync(copyData: false, ct).ConfigureAwait(false) is { } entry)
        {
            if (++entries > MaxTarEntries)
            {
                throw new DockerOperationException($"{asked}: more than {MaxTarEntries} files to read");
            }

            if (entry.EntryType is System.Formats.Tar.TarEntryType.SymbolicLink or System.Formats.Tar.TarEntryType.HardLink)
            {
                // The path asked, or a file in it, is a link: its target is not read (a link could point anywhere), and
                // it is not "absent" either — an inventory that silently left packages out would be worse than none.
                var which = entries == 1 ? asked : parent + entry.Name;
                throw new DockerOperationException($"{Promotion.RegistryClient.Safe(which)} is a link in the image ({Promotion.RegistryClient.Safe(entry.LinkName)}): not followed, not read");
            }

            if (entry.EntryType is not (System.Formats.Tar.TarEntryType.RegularFile or System.Formats.Tar.TarEntryType.V7RegularFile) || entry.DataStream is null)
            {
                continue;
            }

            if (entry.Length > budget)
            {
                throw new DockerOperationException($"{asked}: more than {budget} bytes to read (at {entry.Name.Replace('\n', ' ')})");
            }

            var data = new byte[entry.Length];
            await entry.DataStream.ReadExactlyAsync(data, ct).ConfigureAwait(false);
            budget -= data.Length;
            files.Add((parent + entry.Name, data));
        }

        return files;
    }

    /// <summary>Said when a probe container could not be removed (its id and why); the daemon logs it, the CLI prints it.</summary>
    public Action<string, string>? ProbeLeftBehind { get; set; }

    private AuthConfig Auth(string repository)
    {
        var registry = repository.Split('/')[0];
        return Credentials.TryGetValue(registry, out var c)
            ? new AuthConfig { Username = c.Username, Password = c.Password, ServerAddress = registry }
            : new AuthConfig();
    }

    /// <summary>
    /// Removes the dangling images (untagged: an older build of a tag that moved on) created more than
    /// <paramref name="olderThan"/> ago, through the Engine API's prune (images a container uses are kept by Docker);
    /// returns how many went and the bytes Docker says it reclaimed. Bounded by <paramref name="timeout"/> (a prune of
    /// many layers takes longer than a call).
    /// </summary>
    public async Task<(int Removed, long Reclaimed)?> PruneDanglingImagesAsync(TimeSpan olderThan, TimeSpan timeout, CancellationToken ct)
    {
        await _imageGate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (Volatile.Read(ref _imageHolders) > 0 || Volatile.Read(ref _building) > 0)
            {
                return null; // a build (its cache), a verify or an inventory read (an image pulled by digest) is using untagged images: not now
            }

            // The long client: the prune's own bound (a prune of many layers takes longer than a call), through Call's mapping.
            var r = await Call("prune dangling images", t => _long.Images.PruneImagesAsync(new ImagesPruneParameters
            {
                Filters = new Dictionary<string, IDictionary<string, bool>>
                {
                    ["dangling"] = new Dictionary<string, bool> { ["true"] = true },
                    ["until"] = new Dictionary<string, bool> { [$"{(long)olderThan.TotalSeconds}s"] = true },
                },
            }, t), ct, timeout).ConfigureAwait(false);
            return (r.ImagesDeleted?.Count(d => !string.IsNullOrEmpty(d.Deleted)) ?? 0, (long)r.SpaceReclaimed);
        }
        finally
        {
            _imageGate.Release();
        }
    }

    // The images a verify or an inventory read pulls by digest are untagged ("dangling") while used: the hygiene's prune
    // waits for none to be held, and a hold waits for a prune under way.
    // Never disposed: a prune or a hold still ending while the host disposes the daemon's services must not meet a disposed
    // gate (seen as the daemon exiting 1 at SIGTERM); without AvailableWaitHandle it holds nothing to free.
    private readonly SemaphoreSlim _imageGate = new(1, 1);
    private int _imageHolders;

    /// <summary>
    /// Holds off the hygiene's prune (and the sweep of the builder's own containers) from now until disposed: taken around
    /// pulling an image by digest and using it. A build holds the prune off on its own (<see cref="BuildAsync"/>).
    /// </summary>
    public async Task<IAsyncDisposable> HoldImagesAsync(CancellationToken ct)
    {
        await _imageGate.WaitAsync(ct).ConfigureAwait(false);
        Interlocked.Increment(ref _imageHolders);
        _imageGate.Release();
        return new ImageHold(this);
    }

    /// <summary>Whether a verify or an inventory read holds images now (the sweep leaves the builder's containers alone meanwhile).</summary>
    public bool ImagesHeld => Volatile.Read(ref _imageHolders) > 0;

    private sealed class ImageHold(BuilderDocker docker) : IAsyncDisposable
    {
        private int _done;

        public ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _done, 1) == 0)
            {
                Interlocked.Decrement(ref docker._imageHolders);
            }

            return ValueTask.CompletedTask;
        }
    }

    /// <summary>The label of the containers made to read an image's files (never started): see <see cref="ReadImageFilesAsync"/>.</summary>
    public const string InventoryLabel = "org.toolforge.builder.inventory";

    /// <summary>The label of the containers a verify runs (see the promotion's verify).</summary>
    public const string VerifyLabel = "org.toolforge.builder.verify";

    /// <summary>
    /// Removes the containers the builder made itself (inventory reads, verify probes) that are older than
    /// <paramref name="olderThan"/> (left behind when a removal failed, or a creation timed out after the engine made
    /// one); returns each one's id and what happened. Containers of anyone else are never touched.
    /// </summary>
    public async Task<IReadOnlyList<(string Id, string? Failed)>> SweepReadContainersAsync(TimeSpan olderThan, DateTimeOffset now, CancellationToken ct)
    {
        var left = new List<ContainerListResponse>();
        foreach (var label in new[] { InventoryLabel, VerifyLabel })
        {
            left.AddRange(await Call("list the containers the builder made", t => _short.Containers.ListContainersAsync(new ContainersListParameters
            {
                All = true,
                Filters = new Dictionary<string, IDictionary<string, bool>> { ["label"] = new Dictionary<string, bool> { [label + "=1"] = true } },
            }, t), ct).ConfigureAwait(false));
        }

        var done = new List<(string, string?)>();
        if (ImagesHeld)
        {
            return done; // a verify or an inventory read is under way: its container may be one of these; next time
        }

        // A running one is a verify still under way (its own deadline ends it): never swept.
        // At most 5 a run: the sweep runs inside a health check's short budget; the rest go at the next runs.
        foreach (var c in left.Where(c => c.State is not ("running" or "paused") && now - new DateTimeOffset(DateTime.SpecifyKind(c.Created, DateTimeKind.Utc)) > olderThan).Take(5))
        {
            try
            {
                await Call($"remove container {c.ID[..Math.Min(12, c.ID.Length)]}", async t =>
                {
                    await _short.Containers.RemoveContainerAsync(c.ID, new ContainerRemoveParameters { Force = true }, t).ConfigureAwait(false);
                    return true;
                }, ct).ConfigureAwait(false);
                done.Add((c.ID, null));
            }
            catch (DockerOperationException ex)
            {
                done.Add((c.ID, ex.Message));
            }
            catch (DockerContainerNotFoundException)
            {
                // removed meanwhile (by its owner): gone, as wished
            }
        }

        return done;
    }

    public Task<IList<ContainerListResponse>> ExitedContainersAsync(CancellationToken ct) =>
        Call("list exited containers", t => _short.Containers.ListContainersAsync(new ContainersListParameters
        {
            All = true,
            Filters = new Dictionary<string, IDictionary<string, bool>> { ["status"] = new Dictionary<string, bool> { ["exited"] = true } },
        }, t), ct);

    public Task<IList<ImagesListResponse>> DanglingImagesAsync(CancellationToken ct) =>
        Call("list dangling images", t => _short.Images.ListImagesAsync(new ImagesListParameters
        {
            Filters = new Dictionary<string, IDictionary<string, bool>> { ["dangling"] = new Dictionary<string, bool> { ["true"] = true } },
        }, t), ct);

    public Task RemoveContainerAsync(string id, CancellationToken ct) =>
        Call($"remove container {id[..Math.Min(12, id.Length)]}", async t =>
        {
            await _short.Containers.RemoveContainerAsync(id, new ContainerRemoveParameters(), t).ConfigureAwait(false);
            return true;
        }, ct);

    /// <summary>Points <paramref name="repository"/>:<paramref name="tag"/> at the image <paramref name="source"/> (a reference or id the engine holds).</summary>
    public Task TagImageAsync(string source, string repository, string tag, CancellationToken ct) =>
        Call($"tag {source} as {repository}:{tag}", async t =>
        {
            await _short.Images.TagImageAsync(source, new ImageTagParameters { RepositoryName = repository, Tag = tag }, t).ConfigureAwait(false);
            return true;
        }, ct);

    public Task RemoveImageAsync(string id, CancellationToken ct) =>
        Call($"remove image {id}", async t =>
        {
            await _short.Images.DeleteImageAsync(id, new ImageDeleteParameters(), t).ConfigureAwait(false);
            return true;
        }, ct);

    /// <summary>Credentials from the docker CLI's config.json ("auths": {"host": {"auth": base64(user:password)}}).</summary>
    public static Dictionary<string, RegistryCredential> ReadDockerConfig(string path)
    {
        var result = new Dictionary<string, RegistryCredential>(StringComparer.OrdinalIgnoreCase);
        if (!File.Exists(path))
        {
            return result;
        }

        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        if (!doc.RootElement.TryGetProperty("auths", out var auths))
        {
            return result;
        }

        foreach (var a in auths.EnumerateObject())
        {
            if (a.Value.TryGetProperty("auth", out var auth) && auth.GetString() is { Length: > 0 } b64)
            {
                var pair = Encoding.UTF8.GetString(Convert.FromBase64String(b64));
                var colon = pair.IndexOf(':', StringComparison.Ordinal);
                if (colon > 0)
                {
                    var host = a.Name.Replace("https://", string.Empty, StringComparison.Ordinal).Replace("http://", string.Empty, StringComparison.Ordinal).TrimEnd('/');
                    result[host] = new RegistryCredential(pair[..colon], pair[(colon + 1)..]);
                }
            }
        }

        return result;
    }

    private static void FlushLines(StringBuilder pending, Action<string> log)
    {
        var text = pending.ToString();
        var last = text.LastIndexOf('\n');
        if (last < 0)
        {
            return;
        }

        foreach (var line in text[..last].Split('\n'))
        {
            log(line.TrimEnd('\r'));
        }

        pending.Remove(0, last + 1);
    }

    /// <summary>
    /// What the engine's images and build cache take on its disk (GET /v1.41/system/df — the API of Debian 12's engine,
    /// which newer engines still serve: LayersSize, every layer counted once however many images share it, and the
    /// BuildKit cache records not shared with images), within <paramref name="timeout"/> (the engine computes the sizes:
    /// slow on a big host); the answer read up to <see cref="MaxDiskUsageAnswer"/>. Its own few lines, for Docker.DotNet's
    /// model of /system/df is a newer engine's (no LayersSize). Every failure is a <see cref="DockerOperationException"/>.
    /// </summary>
    public Task<(long ImageBytes, long BuildCacheBytes)> DiskUsageAsync(TimeSpan timeout, CancellationToken ct) =>
        Call("disk usage (/system/df)", async t =>
        {
            try
            {
                var raw = Volatile.Read(ref _raw);
                if (raw is null)
                {
                    var made = Common.Http.LocalHttp.Client(Endpoint);
                    raw = Interlocked.CompareExchange(ref _raw, made, null) ?? made;
                    if (!ReferenceEquals(raw, made))
                    {
                        made.Dispose();
                    }
                }

                using var response = await raw.GetAsync("v1.41/system/df", HttpCompletionOption.ResponseHeadersRead, t).ConfigureAwait(false);
                if (!response.IsSuccessStatusCode)
                {
                    var message = await Common.Http.LocalHttp.ErrorMessageAsync(response, 16 * 1024, ErrorText, t).ConfigureAwait(false);
                    throw new DockerOperationException($"disk usage (/system/df): {(int)response.StatusCode} {Common.Cli.Output.Escape(message)}");
                }

                var body = await Common.Http.LocalHttp.ReadAtMostAsync(response, MaxDiskUsageAnswer, "Docker's /system/df", t).ConfigureAwait(false);
                return ParseDiskUsage(body.Span);
            }
            catch (Exception ex) when (ex is InvalidDataException or NotSupportedException or UriFormatException)
            {
                throw new DockerOperationException($"disk usage (/system/df): {ex.Message}", ex);
            }
        }, ct, timeout);

    // The engine's error JSON's message, or null (then the body itself is said).
    private static string? ErrorText(string text)
    {
        using var doc = JsonDocument.Parse(text);
        return doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("message", out var m) && m.ValueKind == JsonValueKind.String ? m.GetString() : null;
    }

    /// <summary>/system/df lists every image, container, volume and cache record: read up to this many bytes.</summary>
    public const int MaxDiskUsageAnswer = 8 * 1024 * 1024;

    /// <summary>
    /// LayersSize and the sum of the unshared BuildCache[].Size of a /system/df answer. A LayersSize absent is 0 only
    /// when no image is listed (a newer engine leaves it out then); else the answer is refused.
    /// </summary>
    public static (long ImageBytes, long BuildCacheBytes) ParseDiskUsage(ReadOnlySpan<byte> json)
    {
        try
        {
            using var doc = JsonDocument.Parse(json.ToArray());
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new DockerOperationException("disk usage (/system/df): the answer is not an object");
            }

            long imageBytes;
            if (root.TryGetProperty("LayersSize", out var layers) && layers.ValueKind == JsonValueKind.Number && layers.TryGetInt64(out var n) && n >= 0)
            {
                imageBytes = n;
            }
            else if (!root.TryGetProperty("LayersSize", out _) && (!root.TryGetProperty("Images", out var images) || images.ValueKind != JsonValueKind.Array || images.GetArrayLength() == 0))
            {
                imageBytes = 0; // no image: nothing to measure
            }
            else
            {
                throw new DockerOperationException("disk usage (/system/df): the answer has no LayersSize (bytes) though it lists images");
            }

            long cache = 0;
            if (root.TryGetProperty("BuildCache", out var records) && records.ValueKind == JsonValueKind.Array)
            {
                foreach (var r in records.EnumerateArray())
                {
                    var shared = r.ValueKind == JsonValueKind.Object && r.TryGetProperty("Shared", out var sh) && sh.ValueKind == JsonValueKind.True;
                    cache += !shared && r.ValueKind == JsonValueKind.Object && r.TryGetProperty("Size", out var size) && size.ValueKind == JsonValueKind.Number && size.TryGetInt64(out var bytes) && bytes > 0 ? bytes : 0;
                }
            }

            return (imageBytes, cache);
        }
        catch (JsonException ex)
        {
            throw new DockerOperationException($"disk usage (/system/df): not JSON ({ex.Message})");
        }
    }

    private HttpClient? _raw;

    public void Dispose()
    {
        _short.Dispose();
        _long.Dispose();
        Interlocked.Exchange(ref _raw, null)?.Dispose();
    }

    // IProgress that runs synchronously (System.Progress posts to the thread pool and would reorder lines).
    private sealed class Progress(Action<JSONMessage> action) : IProgress<JSONMessage>
    {
        public void Report(JSONMessage value) => action(value);
    }

    // The last lines of a probe's output, synchronously and bounded (5 lines of at most 300 characters).
    private sealed class LineProgress(List<string> lines) : IProgress<string>
    {
        public void Report(string value)
        {
            lock (lines)
            {
                lines.Add(value.Length <= 300 ? value : value[..300] + "…");
                if (lines.Count > 5)
                {
                    lines.RemoveAt(0);
                }
            }
        }
    }
}
