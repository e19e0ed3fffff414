using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace Toolforge.Agents.NodeAgent.Checks.Docker;

/// <summary>The Docker Engine answered with an error status (its JSON "message" when it sent one).</summary>
public sealed class DockerApiException(int statusCode, string message) : Exception(message)
{
    public int StatusCode { get; } = statusCode;
}

/// <summary>
/// The four Engine API calls the node-agent makes (/_ping, /info, the container listing, a container's inspect) over
/// unix:///path or tcp://host:port. Its own few lines instead of Docker.DotNet: that library's hundreds of model types
/// are most of what a NativeAOT node-agent would map into memory, for four calls. Every call has a deadline (its
/// timeout, for the answer and its body together): when it passes, the call throws OperationCanceledException while
/// the caller's token is not cancelled, which is how callers tell a hung engine from a stop.
/// </summary>
internal sealed class DockerEngine : IDisposable
{
    private const int MaxErrorBody = 16 * 1024;

    private readonly HttpClient _http;

    public DockerEngine(string endpoint) => _http = Common.Http.LocalHttp.Client(endpoint);

    public async Task PingAsync(TimeSpan timeout, CancellationToken ct)
    {
        using var deadline = Deadline(timeout, ct);
        using var response = await _http.GetAsync("_ping", HttpCompletionOption.ResponseHeadersRead, deadline.Token).ConfigureAwait(false);
        await ThrowIfFailedAsync(response, "/_ping", deadline.Token).ConfigureAwait(false);
    }

    public Task<DockerInfo> InfoAsync(TimeSpan timeout, CancellationToken ct) => GetAsync("info", DockerJson.Default.DockerInfo, timeout, ct);

    /// <summary>Every container (all: stopped ones too), or those carrying <paramref name="label"/>.</summary>
    public Task<List<DockerContainer>> ListContainersAsync(bool all, string? label, TimeSpan timeout, CancellationToken ct)
    {
        var query = new StringBuilder("containers/json?all=").Append(all ? "true" : "false");
        if (label is not null)
        {
            query.Append("&filters=").Append(Uri.EscapeDataString(JsonSerializer.Serialize(new Dictionary<string, List<string>> { ["label"] = [label] }, DockerJson.Default.DictionaryStringListString)));
        }

        return GetAsync(query.ToString(), DockerJson.Default.ListDockerContainer, timeout, ct);
    }

    public Task<DockerInspect> InspectContainerAsync(string id, TimeSpan timeout, CancellationToken ct) =>
        GetAsync($"containers/{Uri.EscapeDataString(id)}/json", DockerJson.Default.DockerInspect, timeout, ct);

    /// <summary>Every answer of the engine is read up to this many bytes (its lists grow with the host).</summary>
    public const int MaxAnswer = 32 * 1024 * 1024;

    private Task<T> GetAsync<T>(string path, JsonTypeInfo<T> info, TimeSpan timeout, CancellationToken ct) =>
        GetBoundedAsync(path, info, MaxAnswer, timeout, ct);

    /// <summary>
    /// GET <paramref name="path"/> read up to <paramref name="maxBytes"/> (an answer as large as the engine's lists may
    /// be: more is refused, never buffered), then parsed.
    /// </summary>
    public async Task<T> GetBoundedAsync<T>(string path, JsonTypeInfo<T> info, int maxBytes, TimeSpan timeout, CancellationToken ct)
    {
        using var deadline = Deadline(timeout, ct);
        using var response = await _http.GetAsync(path, HttpCompletionOption.ResponseHeadersRead, deadline.Token).ConfigureAwait(false);
        await ThrowIfFailedAsync(response, "/" + path, deadline.Token).ConfigureAwait(false);
        var body = await Common.Http.LocalHttp.ReadAtMostAsync(response, maxBytes, $"/{path}: Docker", deadline.Token).ConfigureAwait(false);
        return JsonSerializer.Deserialize(body.Span, info) ?? throw new JsonException($"/{path}: Docker answered null");
    }

    private static CancellationTokenSource Deadline(TimeSpan timeout, CancellationToken ct)
    {
        var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(timeout);
        return cts;
    }

    private static async Task ThrowIfFailedAsync(HttpResponseMessage response, string path, CancellationToken ct)
    {
        if (response.IsSuccessStatusCode)
        {
            return;
        }

        var code = (int)response.StatusCode;
        var message = await Common.Http.LocalHttp.ErrorMessageAsync(response, MaxErrorBody, t => JsonSerializer.Deserialize(t, DockerJson.Default.DockerError)?.Message, ct).ConfigureAwait(false);
        throw new DockerApiException(code, $"{path}: {code} {message}");
    }

    public void Dispose() => _http.Dispose();
}

public sealed class DockerInfo
{
    public string? ServerVersion { get; set; }

    public List<string>? Warnings { get; set; }
}

public sealed class DockerContainer
{
    public string Id { get; set; } = string.Empty;

    public string? Image { get; set; }

    public string? State { get; set; }

    public Dictionary<string, string>? Labels { get; set; }

    /// <summary>The id of the image it was made from ("sha256:…").</summary>
    [JsonPropertyName("ImageID")]
    public string? ImageID { get; set; }
}

/// <summary>An image of the engine's /images/json.</summary>
public sealed class DockerImage
{
    public string Id { get; set; } = string.Empty;

    public List<string>? RepoDigests { get; set; }
}

public sealed class DockerInspect
{
    /// <summary>The image's id (sha256:...).</summary>
    public string? Image { get; set; }

    public DockerContainerConfig? Config { get; set; }
}

public sealed class DockerContainerConfig
{
    /// <summary>The image as the container was created with it (a name).</summary>
    public string? Image { get; set; }

    public string? User { get; set; }
}

public sealed class DockerError
{
    [JsonPropertyName("message")]
    public string? Message { get; set; }
}

/// <summary>The Engine API's JSON (PascalCase field names), read by generated code.</summary>
[JsonSourceGenerationOptions(PropertyNameCaseInsensitive = true)]
[JsonSerializable(typeof(DockerInfo))]
[JsonSerializable(typeof(List<DockerContainer>))]
[JsonSerializable(typeof(List<DockerImage>))]
[JsonSerializable(typeof(DockerInspect))]
[JsonSerializable(typeof(DockerError))]
[JsonSerializable(typeof(Dictionary<string, List<string>>))]
internal sealed partial class DockerJson : JsonSerializerContext;
