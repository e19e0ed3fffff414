using System.Net;
using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Toolforge.Agents.Common.Tls;

namespace Toolforge.Agents.NodeAgent.Kubernetes.Api;

/// <summary>The API server answered a call with an error status (its Status message when it sent one).</summary>
public sealed class KubeApiException(int statusCode, string message, KubeStatus? status = null) : Exception(message)
{
    public int StatusCode { get; } = statusCode;

    /// <summary>The Status's reason (Conflict, TooManyRequests, NotFound ...), when the server sent one.</summary>
    public string? Reason => status?.Reason;

    /// <summary>The Status's own message (the API server's words, at most 300 characters), when it sent one.</summary>
    public string? StatusMessage => status?.Message is { } m && m.Length > 300 ? m[..300] + "…" : status?.Message;

    /// <summary>The reasons of the Status's causes (DisruptionBudget for an eviction a budget refused).</summary>
    public IReadOnlyList<KubeStatusCause> Causes => status?.Details?.Causes ?? [];
}

/// <summary>
/// The few calls the node-agent makes to the API server (list, watch, get, patch, create), over one HttpClient built
/// from a <see cref="Kubeconfig"/>: the server's certificate checked against the kubeconfig's CA, the client
/// certificate or bearer token presented. Bodies are read by generated code (<see cref="KubeJson"/>) straight from
/// the response stream. No call has a deadline of its own: callers pass a token that ends (list and write: the
/// request timeout; watch: the watch timeout plus the request timeout).
/// </summary>
public sealed class KubeApiClient : IDisposable
{
    private const int MaxErrorBody = 64 * 1024;

    private readonly Kubeconfig _config;
    private readonly HttpClient _http;

    public KubeApiClient(Kubeconfig config)
    {
        _config = config;
        var handler = new SocketsHttpHandler
        {
            ConnectTimeout = TimeSpan.FromSeconds(10),
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(2),
            AutomaticDecompression = DecompressionMethods.None,
            UseProxy = false, // the API server is reached directly, as the kubelet reaches it
        };
        if (config.Server.Scheme == "https")
        {
            handler.SslOptions.RemoteCertificateValidationCallback = config.InsecureSkipTlsVerify ? (_, _, _, _) => true
                : config.CertificateAuthority is { } ca ? Certificates.ServerValidator(ca)
                : null;
            if (config.ClientCertificate is { } cert)
            {
                handler.SslOptions.ClientCertificates = [cert];
            }
        }

        _http = new HttpClient(handler) { BaseAddress = config.Server, Timeout = Timeout.InfiniteTimeSpan };
    }

    /// <summary>GET <paramref name="path"/> (with its query) and read the answer as <typeparamref name="T"/>.</summary>
    public Task<T> GetAsync<T>(string path, JsonTypeInfo<T> info, CancellationToken ct) => SendAsync(HttpMethod.Get, path, null, null, info, ct);

    /// <summary>PATCH <paramref name="path"/> with <paramref name="body"/> of <paramref name="contentType"/> (merge-patch, strategic-merge-patch).</summary>
    public Task<T> PatchAsync<T>(string path, string contentType, string body, JsonTypeInfo<T> info, CancellationToken ct) =>
        SendAsync(HttpMethod.Patch, path, contentType, body, info, ct);

    public Task<T> PostAsync<T>(string path, string body, JsonTypeInfo<T> info, CancellationToken ct) =>
        SendAsync(HttpMethod.Post, path, "application/json", body, info, ct);

    private async Task<T> SendAsync<T>(HttpMethod method, string path, string? contentType, string? body, JsonTypeInfo<T> info, CancellationToken ct)
    {
        using var request = Request(method, path);
        if (body is not null)
        {
            request.Content = new StringContent(body, Encoding.UTF8);
            request.Content.Headers.ContentType = new MediaTypeHeaderValue(contentType!);
        }

        using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
        await ThrowIfFailedAsync(response, method, path, ct).ConfigureAwait(false);
        await using var stream = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        return await JsonSerializer.DeserializeAsync(stream, info, ct).ConfigureAwait(false)
            ?? throw new JsonException($"{method} {path}: the API server answered null");
    }

    /// <summary>
    /// A watch (<paramref name="path"/> with watch=1 in its query): each line the server sends, until it ends the
    /// watch (timeoutSeconds) or <paramref name="ct"/> ends. An ERROR line ends it with <see cref="KubeApiException"/>
    /// carrying the Status code (410: the resourceVersion is too old, list again).
    /// </summary>
    public async IAsyncEnumerable<KubeWatchEvent<T>> WatchAsync<T>(string path, JsonTypeInfo<KubeWatchEvent<T>> info, [EnumeratorCancellation] CancellationToken ct)
    {
        using var request = Request(HttpMethod.Get, path);
        using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
        await ThrowIfFailedAsync(response, HttpMethod.Get, path, ct).ConfigureAwait(false);
        await using var stream = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        while (await reader.ReadLineAsync(ct).ConfigureAwait(false) is { } line)
        {
            if (line.Length == 0)
            {
                continue;
            }

            var e = JsonSerializer.Deserialize(line, info) ?? throw new JsonException($"watch {path}: a null event");
            if (e.Type == "ERROR")
            {
                var status = JsonSerializer.Deserialize(line, KubeJson.Default.KubeWatchEventKubeStatus)?.Object;
                throw new KubeApiException(status?.Code ?? 0, $"watch {path}: {status?.Message ?? "an ERROR event"}");
            }

            yield return e;
        }
    }

    private HttpRequestMessage Request(HttpMethod method, string path)
    {
        var request = new HttpRequestMessage(method, path);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        var token = _config.TokenFile is { } f ? File.ReadAllText(f).Trim() : _config.Token;
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        return request;
    }

    private static async Task ThrowIfFailedAsync(HttpResponseMessage response, HttpMethod method, string path, CancellationToken ct)
    {
        if (response.IsSuccessStatusCode)
        {
            return;
        }

        var code = (int)response.StatusCode;
        KubeStatus? status = null;
        var message = await Common.Http.LocalHttp.ErrorMessageAsync(response, MaxErrorBody, t => (status = JsonSerializer.Deserialize(t, KubeJson.Default.KubeStatus))?.Message, ct).ConfigureAwait(false);
        throw new KubeApiException(code, $"{method} {path}: {code} {response.ReasonPhrase}{(message.Length > 0 ? ": " + message : string.Empty)}", status);
    }

    public void Dispose() => _http.Dispose();
}
