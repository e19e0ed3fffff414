using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Toolforge.Agents.BuilderAgent.Docker;

namespace Toolforge.Agents.BuilderAgent.Promotion;

/// <summary>A manifest as the registry stores it: its exact bytes, their media type and digest.</summary>
public sealed record Manifest(byte[] Bytes, string MediaType, string Digest);

/// <summary>
/// The registry's HTTP API (distribution v2), only what promotion needs: read a manifest (by tag or digest) with the
/// Accept headers of every manifest kind, and put those exact bytes under another tag, so the tag names the same
/// digest: no blob is uploaded, nothing is rebuilt. Every call has <c>timeout</c>; a response body is read only up to
/// a bound (4 MiB, the registry's own manifest limit); redirects are not followed; errors are one line, with the
/// registry's error code and message escaped and cut. A loopback registry (127.0.0.0/8, ::1, localhost) is spoken to
/// over plain HTTP, as dockerd does by default; any other over HTTPS. Authentication: none, Basic, or a Bearer token
/// from the realm the registry names (with the builder's credentials for that registry, when it has them).
/// </summary>
public sealed class RegistryClient : IDisposable
{
    public const int MaxManifestBytes = 4 * 1024 * 1024;

    private const int MaxSmallBody = 64 * 1024;

    public static readonly string[] ManifestTypes =
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ];

    private readonly HttpClient _http;
    private readonly string _registry;
    private readonly Uri _base;
    private readonly RegistryCredential? _credential;
    private readonly TimeSpan _timeout;
    private AuthenticationHeaderValue? _auth;

    public RegistryClient(string registry, RegistryCredential? credential, TimeSpan timeout, HttpMessageHandler? handler = null)
    {
        _registry = registry;
        _credential = credential;
        _timeout = timeout;
        var scheme = IsLoopback(registry) ? "http" : "https";
        _base = new Uri($"{scheme}://{registry}/v2/");
        _http = new HttpClient(handler ?? new SocketsHttpHandler { AllowAutoRedirect = false, ConnectTimeout = timeout }) { Timeout = Timeout.InfiniteTimeSpan };
    }

    /// <summary>host[:port] of the registry this client speaks to.</summary>
    public string Registry => _registry;

    /// <summary>127.0.0.0/8, ::1 or localhost, with or without a port.</summary>
    public static bool IsLoopback(string registry)
    {
        var host = registry.StartsWith('[') ? registry[1..registry.IndexOf(']', StringComparison.Ordinal)]
            : registry.Contains(':', StringComparison.Ordinal) ? registry[..registry.LastIndexOf(':')] : registry;
        return host.Equals("localhost", StringComparison.OrdinalIgnoreCase) || (IPAddress.TryParse(host, out var ip) && IPAddress.IsLoopback(ip));
    }

    /// <summary>The manifest of <paramref name="name"/> at <paramref name="reference"/> (a tag or a digest), or null when the registry has none.</summary>
    public async Task<Manifest?> GetManifestAsync(string name, string reference, CancellationToken ct)
    {
        var what = $"{_registry}/{name}:{reference}";
        using var response = await SendAsync(what, () =>
        {
            var r = new HttpRequestMessage(HttpMethod.Get, new Uri(_base, $"{name}/manifests/{reference}"));
            foreach (var t in ManifestTypes)
            {
                r.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(t));
            }

            return r;
        }, $"repository:{name}:pull", ct).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }

        await EnsureSuccessAsync(what, "read manifest", response, ct).ConfigureAwait(false);
        var bytes = await ReadBoundedAsync(what, response, MaxManifestBytes, ct).ConfigureAwait(false);
        var mediaType = response.Content.Headers.ContentType?.MediaType ?? string.Empty;
        if (!ManifestTypes.Contains(mediaType, StringComparer.Ordinal))
        {
            throw new PromotionException($"{Safe(what)}: the registry answered with a manifest of type \"{Safe(mediaType)}\", not one promotion copies ({string.Join(", ", ManifestTypes)})");
        }

        var digest = Digest(bytes);
        if (reference.StartsWith("sha256:", StringComparison.Ordinal) && digest != reference)
        {
            throw new PromotionException($"{Safe(what)}: the bytes the registry sent hash to {digest}, not the digest asked for");
        }

        if (response.Headers.TryGetValues("Docker-Content-Digest", out var said) && said.FirstOrDefault() is { } header && header != digest)
        {
            throw new PromotionException($"{Safe(what)}: the registry says digest {Safe(header)} for bytes that hash to {digest}");
        }

        return new Manifest(bytes, mediaType, digest);
    }

    /// <summary>Puts <paramref name="manifest"/>'s exact bytes under <paramref name="tag"/>; the registry must answer with the same digest.</summary>
    public async Task PutManifestAsync(string name, string tag, Manifest manifest, CancellationToken ct)
    {
        var what = $"{_registry}/{name}:{tag}";
        using var response = await SendAsync(what, () =>
        {
            var content = new ByteArrayContent(manifest.Bytes);
            content.Headers.ContentType = new MediaTypeHeaderValue(manifest.MediaType);
            return new HttpRequestMessage(HttpMethod.Put, new Uri(_base, $"{name}/manifests/{tag}")) { Content = content };
        }, $"repository:{name}:pull,push", ct).ConfigureAwait(false);
        await EnsureSuccessAsync(what, "write manifest", response, ct).ConfigureAwait(false);
        if (response.Headers.TryGetValues("Docker-Content-Digest", out var said) && said.FirstOrDefault() is { } header && header != manifest.Digest)
        {
            throw new PromotionException($"{Safe(what)}: the registry stored the manifest as {Safe(header)}, not {manifest.Digest}");
        }
    }

    /// <summary>The most tags one repository's listing may have (a registry answering with more is refused, not cut).</summary>
    public const int MaxTags = 20_000;

    /// <summary>
    /// Every tag of <paramref name="name"/> (GET /v2/name/tags/list, following the registry's Link pages of up to 1,000),
    /// or an empty list when the repository does not exist. More than <see cref="MaxTags"/> is an error: a prune must
    /// see every tag, since a tag it did not see could name a digest it deletes.
    /// </summary>
    public async Task<IReadOnlyList<string>> ListTagsAsync(string name, CancellationToken ct)
    {
        var tags = new List<string>();
        var next = new Uri(_base, $"{name}/tags/list?n=1000");
        var what = $"{_registry}/{name}";
        for (var page = 0; ; page++)
        {
            if (page > MaxTags / 100)
            {
                throw new PromotionException($"{Safe(what)}: the registry's tag listing did not end after {page} pages");
            }

            var uri = next;
            using var response = await SendAsync(what, () => new HttpRequestMessage(HttpMethod.Get, uri), $"repository:{name}:pull", ct).ConfigureAwait(false);
            if (response.StatusCode == HttpStatusCode.NotFound && page == 0)
            {
                return tags; // no such repository
            }

            await EnsureSuccessAsync(what, $"list tags (page {page + 1})", response, ct).ConfigureAwait(false);
            var body = await ReadBoundedAsync(what, response, MaxManifestBytes, ct).ConfigureAwait(false);
            TagList? list;
            try
            {
                list = JsonSerializer.Deserialize(body, RegistryJson.Default.TagList);
            }
            catch (JsonException)
            {
                throw new PromotionException($"{Safe(what)}: list tags: the registry's answer is not a tag list");
            }

            tags.AddRange(list?.Tags ?? []);
            if (tags.Count > MaxTags)
            {
                throw new PromotionException($"{Safe(what)}: more than {MaxTags} tags; a prune must see them all");
            }

            // Link: </v2/name/tags/list?last=x&n=1000>; rel="next"
            var link = response.Headers.TryGetValues("Link", out var links) ? string.Join(",", links) : null;
            if (link is null)
            {
                return tags;
            }

            // The one Link the API sends: <url>; rel="next" (RFC 8288 also allows rel=next unquoted). Anything else
            // is not taken for the end: a listing that may go on refuses the prune.
            var open = link.IndexOf('<', StringComparison.Ordinal);
            var close = open < 0 ? -1 : link.IndexOf('>', open);
            var rel = close < 0 ? string.Empty : link[(close + 1)..].Replace(" ", string.Empty, StringComparison.Ordinal);
            if (close < 0 || !(rel.StartsWith(";rel=\"next\"", StringComparison.Ordinal) || rel.StartsWith(";rel=next", StringComparison.Ordinal)))
            {
                throw new PromotionException($"{Safe(what)}: list tags: the registry's Link header \"{Safe(link)}\" is not a next page this client reads; the listing may go on");
            }

            var target = new Uri(_base, link[(open + 1)..close]);
            if (target.Authority != _base.Authority)
            {
                throw new PromotionException($"{Safe(what)}: list tags: the registry's next page is on another host ({Safe(target.Authority)})");
            }

            next = target;
        }
    }

    /// <summary>
    /// Deletes the manifest <paramref name="digest"/> of <paramref name="name"/> (DELETE by digest: the registry removes it
    /// with every tag that names it). False when the registry has no such manifest; an error when deletes are disabled.
    /// </summary>
    public async Task<bool> DeleteManifestAsync(string name, string digest, CancellationToken ct)
    {
        var what = $"{_registry}/{name}@{digest}";
        using var response = await SendAsync(what, () => new HttpRequestMessage(HttpMethod.Delete, new Uri(_base, $"{name}/manifests/{digest}")),
            $"repository:{name}:pull,delete", ct).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return false;
        }

        if (response.StatusCode == HttpStatusCode.MethodNotAllowed)
        {
            throw new PromotionException($"{Safe(what)}: the registry does not allow deletes (405; docker-registry: storage.delete.enabled is off)");
        }

        await EnsureSuccessAsync(what, "delete manifest", response, ct).ConfigureAwait(false);
        return true;
    }

    /// <summary>Uploads <paramref name="content"/> as a blob of <paramref name="name"/> unless the registry has it already (HEAD first): one POST, then one monolithic PUT.</summary>
    public async Task PushBlobAsync(string name, byte[] content, CancellationToken ct)
    {
        var digest = Digest(content);
        var what = $"{_registry}/{name}@{digest}";
        using (var head = await SendAsync(what, () => new HttpRequestMessage(HttpMethod.Head, new Uri(_base, $"{name}/blobs/{digest}")), $"repository:{name}:pull,push", ct).ConfigureAwait(false))
        {
            if (head.IsSuccessStatusCode)
            {
                return;
            }

            if (head.StatusCode != HttpStatusCode.NotFound)
            {
                throw new PromotionException($"{Safe(what)}: check blob: HTTP {(int)head.StatusCode}");
            }
        }

        Uri location;
        using (var start = await SendAsync(what, () => new HttpRequestMessage(HttpMethod.Post, new Uri(_base, $"{name}/blobs/uploads/")), $"repository:{name}:pull,push", ct).ConfigureAwait(false))
        {
            await EnsureSuccessAsync(what, "start blob upload", start, ct).ConfigureAwait(false);
            location = start.Headers.Location is { } l ? (l.IsAbsoluteUri ? l : new Uri(_base, l)) : throw new PromotionException($"{Safe(what)}: start blob upload: the registry named no upload location");
            if (location.Authority != _base.Authority)
            {
                throw new PromotionException($"{Safe(what)}: start blob upload: the registry named an upload location on another host ({Safe(location.Authority)})");
            }
        }

        var put = new UriBuilder(location);
        put.Query = (put.Query.Length > 1 ? put.Query[1..] + "&" : string.Empty) + "digest=" + Uri.EscapeDataString(digest);
        using var done = await SendAsync(what, () =>
        {
            var body = new ByteArrayContent(content);
            body.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            return new HttpRequestMessage(HttpMethod.Put, put.Uri) { Content = body };
        }, $"repository:{name}:pull,push", ct).ConfigureAwait(false);
        await EnsureSuccessAsync(what, "upload blob", done, ct).ConfigureAwait(false);
    }

    public static string Digest(byte[] bytes) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(bytes));

    // Sends; on a 401 with a challenge, authenticates once (Basic, or a Bearer token for scope) and sends again.
    private async Task<HttpResponseMessage> SendAsync(string what, Func<HttpRequestMessage> request, string scope, CancellationToken ct)
    {
        var response = await SendOnceAsync(what, request(), ct).ConfigureAwait(false);
        if (response.StatusCode != HttpStatusCode.Unauthorized)
        {
            return response;
        }

        var challenge = response.Headers.WwwAuthenticate.FirstOrDefault();
        response.Dispose();
        if (challenge is null)
        {
            throw new PromotionException($"{Safe(what)}: the registry refused the request (401) without saying how to authenticate");
        }

        _auth = await AuthenticateAsync(what, challenge, scope, ct).ConfigureAwait(false);
        response = await SendOnceAsync(what, request(), ct).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.Unauthorized)
        {
            response.Dispose();
            throw new PromotionException($"{Safe(what)}: the registry refused the builder's credentials (401){(_credential is null ? ": the builder has none for " + Safe(_registry) + " (Builder:Credentials or Builder:DockerConfig)" : string.Empty)}");
        }

        return response;
    }

    private async Task<HttpResponseMessage> SendOnceAsync(string what, HttpRequestMessage request, CancellationToken ct)
    {
        using var _ = request;
        request.Headers.Authorization = _auth;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(_timeout);
        try
        {
            return await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new PromotionException($"{Safe(what)}: the registry did not answer within {_timeout.TotalSeconds:0.#} s");
        }
        catch (HttpRequestException ex)
        {
            throw new PromotionException($"{Safe(what)}: {Safe(ex.GetBaseException().Message)}", ex);
        }
    }

    private async Task<AuthenticationHeaderValue> AuthenticateAsync(string what, AuthenticationHeaderValue challenge, string scope, CancellationToken ct)
    {
        if (challenge.Scheme.Equals("Basic", StringComparison.OrdinalIgnoreCase))
        {
            return _credential is { } c ? Basic(c)
                : throw new PromotionException($"{Safe(what)}: the registry asks for a login and the builder has none for {Safe(_registry)} (Builder:Credentials or Builder:DockerConfig)");
        }

        if (!challenge.Scheme.Equals("Bearer", StringComparison.OrdinalIgnoreCase))
        {
            throw new PromotionException($"{Safe(what)}: the registry asks for authentication scheme \"{Safe(challenge.Scheme)}\", which promotion does not speak (Basic, Bearer)");
        }

        var parameters = ParseChallenge(challenge.Parameter ?? string.Empty);
        if (!parameters.TryGetValue("realm", out var realm) || !Uri.TryCreate(realm, UriKind.Absolute, out var realmUri)
            || !(realmUri.Scheme == "https" || (realmUri.Scheme == "http" && IsLoopback(realmUri.Authority) && IsLoopback(_registry))))
        {
            throw new PromotionException($"{Safe(what)}: the registry's token realm \"{Safe(realm ?? string.Empty)}\" is not an https URL (credentials are not sent to it; plain http only when the registry itself is on this host)");
        }

        var query = new StringBuilder("?scope=").Append(Uri.EscapeDataString(parameters.GetValueOrDefault("scope") is { Length: > 0 } s && s.Contains(scope, StringComparison.Ordinal) ? s : scope));
        if (parameters.TryGetValue("service", out var service))
        {
            query.Append("&service=").Append(Uri.EscapeDataString(service));
        }

        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(realmUri, realmUri.AbsolutePath + query));
        if (_credential is { } cred)
        {
            request.Headers.Authorization = Basic(cred);
        }

        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(_timeout);
        try
        {
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cts.Token).ConfigureAwait(false);
            await EnsureSuccessAsync(what, "get a token", response, ct).ConfigureAwait(false);
            var body = await ReadBoundedAsync(what, response, MaxSmallBody, ct).ConfigureAwait(false);
            var token = JsonSerializer.Deserialize(body, RegistryJson.Default.TokenResponse);
            var value = token?.Token is { Length: > 0 } t ? t : token?.AccessToken;
            return value is { Length: > 0 } ? new AuthenticationHeaderValue("Bearer", value)
                : throw new PromotionException($"{Safe(what)}: the token service at {Safe(realmUri.GetLeftPart(UriPartial.Path))} answered without a token");
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new PromotionException($"{Safe(what)}: the token service did not answer within {_timeout.TotalSeconds:0.#} s");
        }
        catch (HttpRequestException ex)
        {
            throw new PromotionException($"{Safe(what)}: token service: {Safe(ex.GetBaseException().Message)}", ex);
        }
        catch (JsonException)
        {
            throw new PromotionException($"{Safe(what)}: the token service answered with something that is not a token response");
        }
    }

    private static AuthenticationHeaderValue Basic(RegistryCredential c) =>
        new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{c.Username}:{c.Password}")));

    internal static Dictionary<string, string> ParseChallenge(string parameter)
    {
        var result = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var i = 0;
        while (i < parameter.Length)
        {
            while (i < parameter.Length && (parameter[i] == ',' || parameter[i] == ' '))
            {
                i++;
            }

            var eq = parameter.IndexOf('=', i);
            if (eq < 0)
            {
                break;
            }

            var key = parameter[i..eq].Trim();
            i = eq + 1;
            string value;
            if (i < parameter.Length && parameter[i] == '"')
            {
                var end = parameter.IndexOf('"', i + 1);
                end = end < 0 ? parameter.Length : end;
                value = parameter[(i + 1)..end];
                i = end + 1;
            }
            else
            {
                var end = parameter.IndexOf(',', i);
                end = end < 0 ? parameter.Length : end;
                value = parameter[i..end].Trim();
                i = end;
            }

            result[key] = value;
        }

        return result;
    }

    private async Task EnsureSuccessAsync(string what, string action, HttpResponseMessage response, CancellationToken ct)
    {
        if (response.IsSuccessStatusCode)
        {
            return;
        }

        string detail;
        try
        {
            var body = await ReadBoundedAsync(what, response, MaxSmallBody, ct).ConfigureAwait(false);
            var errors = JsonSerializer.Deserialize(body, RegistryJson.Default.RegistryErrors);
            detail = errors?.Errors is { Count: > 0 } list
                ? string.Join("; ", list.Take(3).Select(e => $"{e.Code}: {e.Message}"))
                : Encoding.UTF8.GetString(body);
        }
        catch (Exception ex) when (ex is JsonException or PromotionException)
        {
            detail = "(no readable error body)";
        }

        throw new PromotionException($"{Safe(what)}: {action}: HTTP {(int)response.StatusCode} {Safe(detail.Trim())}");
    }

    private async Task<byte[]> ReadBoundedAsync(string what, HttpResponseMessage response, int max, CancellationToken ct)
    {
        if (response.Content.Headers.ContentLength is { } length && length > max)
        {
            throw new PromotionException($"{Safe(what)}: the registry's answer is {length} bytes, more than {max}");
        }

        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(_timeout);
        try
        {
            await using var stream = await response.Content.ReadAsStreamAsync(cts.Token).ConfigureAwait(false);
            using var buffer = new MemoryStream();
            var chunk = new byte[16 * 1024];
            int n;
            while ((n = await stream.ReadAsync(chunk, cts.Token).ConfigureAwait(false)) > 0)
            {
                if (buffer.Length + n > max)
                {
                    throw new PromotionException($"{Safe(what)}: the registry's answer is more than {max} bytes");
                }

                buffer.Write(chunk, 0, n);
            }

            return buffer.ToArray();
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new PromotionException($"{Safe(what)}: the registry's answer did not arrive within {_timeout.TotalSeconds:0.#} s");
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException)
        {
            throw new PromotionException($"{Safe(what)}: reading the answer: {Safe(ex.GetBaseException().Message)}", ex);
        }
    }

    internal static string Safe(string s) => Common.Cli.Output.Escape(s.Length <= 300 ? s : s[..300] + "…");

    public void Dispose() => _http.Dispose();
}

internal sealed class TokenResponse
{
    [JsonPropertyName("token")]
    public string? Token { get; set; }

    [JsonPropertyName("access_token")]
    public string? AccessToken { get; set; }
}

internal sealed class TagList
{
    [JsonPropertyName("tags")]
    public List<string>? Tags { get; set; }
}

internal sealed class RegistryErrors
{
    [JsonPropertyName("errors")]
    public List<RegistryError>? Errors { get; set; }
}

internal sealed class RegistryError
{
    [JsonPropertyName("code")]
    public string? Code { get; set; }

    [JsonPropertyName("message")]
    public string? Message { get; set; }
}

[JsonSerializable(typeof(TokenResponse))]
[JsonSerializable(typeof(RegistryErrors))]
[JsonSerializable(typeof(TagList))]
internal sealed partial class RegistryJson : JsonSerializerContext;
