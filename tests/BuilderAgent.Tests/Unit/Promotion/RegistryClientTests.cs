using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Toolforge.Agents.BuilderAgent.Docker;
using Toolforge.Agents.BuilderAgent.Promotion;

namespace Toolforge.Agents.BuilderAgent.Tests;

/// <summary>The registry client against a scripted HTTP peer: authentication, bounds, digests, errors in one line.</summary>
public sealed class RegistryClientTests
{
    private const string Registry = "reg.test:5000";
    private static readonly byte[] ManifestBytes = Encoding.UTF8.GetBytes("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\"}");
    private static readonly string ManifestDigest = RegistryClient.Digest(ManifestBytes);

    private sealed class Script(Func<HttpRequestMessage, HttpResponseMessage> answer) : HttpMessageHandler
    {
        public List<(HttpMethod Method, Uri Uri, string? Auth)> Seen { get; } = [];

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Seen.Add((request.Method, request.RequestUri!, request.Headers.Authorization?.ToString()));
            return Task.FromResult(answer(request));
        }
    }

    private static HttpResponseMessage Manifest(byte[]? bytes = null, string? digestHeader = null)
    {
        var r = new HttpResponseMessage(HttpStatusCode.OK) { Content = new ByteArrayContent(bytes ?? ManifestBytes) };
        r.Content.Headers.ContentType = new MediaTypeHeaderValue("application/vnd.docker.distribution.manifest.v2+json");
        r.Headers.Add("Docker-Content-Digest", digestHeader ?? RegistryClient.Digest(bytes ?? ManifestBytes));
        return r;
    }

    private static HttpResponseMessage Challenge(string header)
    {
        var r = new HttpResponseMessage(HttpStatusCode.Unauthorized);
        r.Headers.TryAddWithoutValidation("WWW-Authenticate", header);
        return r;
    }

    [Fact]
    public async Task Promote_Registry_BearerChallenge_GetsATokenWithTheBuildersLogin_AndRetries()
    {
        var script = new Script(req => req.RequestUri!.Host switch
        {
            "auth.test" => new HttpResponseMessage(HttpStatusCode.OK) { Content = new StringContent("{\"token\":\"T0K\"}") },
            _ when req.Headers.Authorization?.ToString() == "Bearer T0K" => Manifest(),
            _ => Challenge("Bearer realm=\"https://auth.test/token\",service=\"reg\",scope=\"repository:tf-a:pull\""),
        });
        using var client = new RegistryClient(Registry, new RegistryCredential("builder", "pw"), TimeSpan.FromSeconds(5), script);
        var m = await client.GetManifestAsync("tf-a", "testing", default);
        Assert.Equal(ManifestDigest, m!.Digest);
        Assert.Equal("https", script.Seen[0].Uri.Scheme); // not a loopback registry: HTTPS
        var token = Assert.Single(script.Seen, s => s.Uri.Host == "auth.test");
        Assert.Equal("Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes("builder:pw")), token.Auth);
        Assert.Contains("scope=repository%3Atf-a%3Apull", token.Uri.Query, StringComparison.Ordinal);
        Assert.Contains("service=reg", token.Uri.Query, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Promote_Registry_ATokenRealmOverPlainHttp_GetsNoCredentials()
    {
        var script = new Script(_ => Challenge("Bearer realm=\"http://evil.test/token\",service=\"reg\""));
        using var client = new RegistryClient(Registry, new RegistryCredential("builder", "pw"), TimeSpan.FromSeconds(5), script);
        var ex = await Assert.ThrowsAsync<PromotionException>(() => client.GetManifestAsync("tf-a", "testing", default));
        Assert.Contains("is not an https URL", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(script.Seen, s => s.Uri.Host == "evil.test");
    }

    [Fact]
    public async Task Promote_Registry_BasicWithoutALogin_SaysWhereLoginsComeFrom()
    {
        using var client = new RegistryClient(Registry, null, TimeSpan.FromSeconds(5), new Script(_ => Challenge("Basic realm=\"reg\"")));
        var ex = await Assert.ThrowsAsync<PromotionException>(() => client.GetManifestAsync("tf-a", "testing", default));
        Assert.Contains("Builder:Credentials or Builder:DockerConfig", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Promote_Registry_AManifestOverTheBound_OrWithAnotherDigest_IsRefused()
    {
        var big = new byte[RegistryClient.MaxManifestBytes + 1];
        using (var client = new RegistryClient(Registry, null, TimeSpan.FromSeconds(5), new Script(_ => Manifest(big))))
        {
            var ex = await Assert.ThrowsAsync<PromotionException>(() => client.GetManifestAsync("tf-a", "testing", default));
            Assert.Contains("more than", ex.Message, StringComparison.Ordinal);
        }

        using (var client = new RegistryClient(Registry, null, TimeSpan.FromSeconds(5), new Script(_ => Manifest(digestHeader: "sha256:" + new string('0', 64)))))
        {
            var ex = await Assert.ThrowsAsync<PromotionException>(() => client.GetManifestAsync("tf-a", "testing", default));
            Assert.Contains("for bytes that hash to " + ManifestDigest, ex.Message, StringComparison.Ordinal);
        }

        using (var client = new RegistryClient(Registry, null, TimeSpan.FromSeconds(5), new Script(_ => Manifest())))
        {
            var ex = await Assert.ThrowsAsync<PromotionException>(() => client.GetManifestAsync("tf-a", "sha256:" + new string('1', 64), default));
            Assert.Contains("not the digest asked for", ex.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Promote_Registry_AnErrorBody_IsOneEscapedLine_AndAMissingManifestIsNull()
    {
        var script = new Script(req => req.Method == HttpMethod.Get
            ? new HttpResponseMessage(HttpStatusCode.NotFound)
            : new HttpResponseMessage(HttpStatusCode.Forbidden) { Content = new StringContent("{\"errors\":[{\"code\":\"DENIED\",\"message\":\"no\\u001b[31m\\nway\"}]}") });
        using var client = new RegistryClient(Registry, null, TimeSpan.FromSeconds(5), script);
        Assert.Null(await client.GetManifestAsync("tf-a", "latest", default));
        var ex = await Assert.ThrowsAsync<PromotionException>(() => client.PutManifestAsync("tf-a", "latest", new Manifest(ManifestBytes, "application/vnd.docker.distribution.manifest.v2+json", ManifestDigest), default));
        Assert.Contains("write manifest: HTTP 403 DENIED: no", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', ex.Message);
        Assert.DoesNotContain('\u001b', ex.Message);
        var put = Assert.Single(script.Seen, s => s.Method == HttpMethod.Put);
        Assert.EndsWith("/v2/tf-a/manifests/latest", put.Uri.AbsolutePath, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Promote_Registry_APeerThatNeverAnswers_IsADeadline_NotAHang()
    {
        using var client = new RegistryClient(Registry, null, TimeSpan.FromMilliseconds(200), new Hang());
        var ex = await Assert.ThrowsAsync<PromotionException>(() => client.GetManifestAsync("tf-a", "testing", default));
        Assert.Contains("did not answer within 0.2 s", ex.Message, StringComparison.Ordinal);
    }

    private sealed class Hang : HttpMessageHandler
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            await Task.Delay(Timeout.Infinite, cancellationToken);
            throw new InvalidOperationException("unreachable");
        }
    }

    private static HttpResponseMessage Tags(string json, string? link = null)
    {
        var r = new HttpResponseMessage(HttpStatusCode.OK) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        if (link is not null)
        {
            r.Headers.TryAddWithoutValidation("Link", link);
        }

        return r;
    }

    [Fact]
    public async Task ListTags_FollowsEveryPage_QuotedOrNot_AndANoSuchRepositoryIsNoTags()
    {
        var script = new Script(r => r.RequestUri!.Query switch
        {
            "?n=1000" => Tags("""{"name":"x","tags":["a","b"]}""", "</v2/x/tags/list?last=b&n=1000>; rel=\"next\""),
            "?last=b&n=1000" => Tags("""{"name":"x","tags":["c"]}""", "</v2/x/tags/list?last=c&n=1000>; rel=next"),
            _ => Tags("""{"name":"x","tags":["d"]}"""),
        });
        using var client = new RegistryClient(Registry, null, TimeSpan.FromSeconds(5), script);
        Assert.Equal(["a", "b", "c", "d"], await client.ListTagsAsync("x", CancellationToken.None));

        using var none = new RegistryClient(Registry, null, TimeSpan.FromSeconds(5), new Script(_ => new HttpResponseMessage(HttpStatusCode.NotFound)));
        Assert.Empty(await none.ListTagsAsync("x", CancellationToken.None));
    }

    [Theory]
    [InlineData("404 on a later page", "list tags (page 2): HTTP 404")]
    [InlineData("odd link", "is not a next page this client reads; the listing may go on")]
    [InlineData("another host", "the registry's next page is on another host (evil.test)")]
    public async Task ListTags_AListingThatMayGoOn_IsAnError_NeverTakenForTheEnd(string kind, string said)
    {
        var script = new Script(r => r.RequestUri!.Query == "?n=1000"
            ? Tags("""{"name":"x","tags":["a"]}""", kind switch
            {
                "odd link" => "</v2/x/tags/list?last=a>; rel=\"prev\"",
                "another host" => "<https://evil.test/v2/x/tags/list?last=a>; rel=\"next\"",
                _ => "</v2/x/tags/list?last=a&n=1000>; rel=\"next\"",
            })
            : new HttpResponseMessage(HttpStatusCode.NotFound));
        using var client = new RegistryClient(Registry, null, TimeSpan.FromSeconds(5), script);

        var ex = await Assert.ThrowsAsync<PromotionException>(() => client.ListTagsAsync("x", CancellationToken.None));
        Assert.Contains(said, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DeleteManifest_ARegistryWithoutDeletes_IsSaidAsSuch()
    {
        using var client = new RegistryClient(Registry, null, TimeSpan.FromSeconds(5), new Script(_ => new HttpResponseMessage(HttpStatusCode.MethodNotAllowed)));
        var ex = await Assert.ThrowsAsync<PromotionException>(() => client.DeleteManifestAsync("x", ManifestDigest, CancellationToken.None));
        Assert.Equal($"{Registry}/x@{ManifestDigest}: the registry does not allow deletes (405; docker-registry: storage.delete.enabled is off)", ex.Message);
    }

    [Fact]
    public async Task DeleteManifest_Refused_IsOneLineWithTheRegistrysWords()
    {
        using var client = new RegistryClient(Registry, null, TimeSpan.FromSeconds(5), new Script(_ => new HttpResponseMessage(HttpStatusCode.Forbidden)
        {
            Content = new StringContent("""{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}""", Encoding.UTF8, "application/json"),
        }));
        var ex = await Assert.ThrowsAsync<PromotionException>(() => client.DeleteManifestAsync("x", ManifestDigest, CancellationToken.None));
        Assert.Equal($"{Registry}/x@{ManifestDigest}: delete manifest: HTTP 403 DENIED: requested access to the resource is denied", ex.Message);
    }
}
