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

    private async Task<T> Call<T>(string what, Func<CancellationToken, Task<T>> call, CancellationToken ct)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(CallTimeout);
        try
        {
            return await call(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new DockerOperationException($"{what}: Docker at {Endpoint} did not answer within {CallTimeout.TotalSeconds:0}s");
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

    public void Dispose()
    {
        _short.Dispose();
        _long.Dispose();
    }

    // IProgress that runs synchronously (System.Progress posts to the thread pool and would reorder lines).
    private sealed class Progress(Action<JSONMessage> action) : IProgress<JSONMessage>
    {
        public void Report(JSONMessage value) => action(value);
    }
}
