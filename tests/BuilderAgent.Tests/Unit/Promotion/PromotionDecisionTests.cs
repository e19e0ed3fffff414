using Toolforge.Agents.BuilderAgent.Promotion;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.BuilderAgent.Tests;

/// <summary>The pure parts of verify and promote: what may be promoted, the registry's challenge, the verdict file.</summary>
public sealed class PromotionDecisionTests
{
    private const string D1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    private const string D2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    private static readonly DateTimeOffset At = new(2026, 12, 6, 9, 0, 0, TimeSpan.Zero);

    [Fact]
    public void Promote_Refusal_OnlyAPassedVerdictForTheCurrentTestingDigest_IsPromoted()
    {
        Assert.Null(Promoter.Refusal(new Verdict(D1, true, At, "exit 0"), D1));
        Assert.Contains("never verified", Promoter.Refusal(null, D1), StringComparison.Ordinal);
        Assert.Contains("its verify failed", Promoter.Refusal(new Verdict(D1, false, At, "the probe exited 3"), D1), StringComparison.Ordinal);
        Assert.Contains("verify it first", Promoter.Refusal(new Verdict(D1, true, At, "exit 0"), D2), StringComparison.Ordinal);
        Assert.Contains("no testing", Promoter.Refusal(new Verdict(D1, true, At, "exit 0"), null), StringComparison.Ordinal);
    }

    [Fact]
    public void Promote_BearerChallenge_IsParsed_QuotedAndBare()
    {
        var p = RegistryClient.ParseChallenge("realm=\"https://auth.example/token\",service=\"registry.example\", scope=\"repository:a/b:pull,push\"");
        Assert.Equal("https://auth.example/token", p["realm"]);
        Assert.Equal("registry.example", p["service"]);
        Assert.Equal("repository:a/b:pull,push", p["scope"]);
        Assert.Equal("x", RegistryClient.ParseChallenge("realm=x")["realm"]);
        Assert.Empty(RegistryClient.ParseChallenge("garbage"));
    }

    [Theory]
    [InlineData("127.0.0.1:5000", true)]
    [InlineData("127.3.4.5", true)]
    [InlineData("localhost:5000", true)]
    [InlineData("[::1]:5000", true)]
    [InlineData("docker-registry.svc.toolforge.org", false)]
    [InlineData("10.0.0.1:5000", false)]
    public void Promote_OnlyALoopbackRegistry_IsSpokenToInPlainHttp(string registry, bool loopback) =>
        Assert.Equal(loopback, RegistryClient.IsLoopback(registry));

    [Fact]
    public void Verify_Store_KeepsTheLastVerdictPerRepository_AcrossInstances()
    {
        using var dir = new TempDir();
        var store = new VerifiedStore(dir["state/verified.json"]);
        Assert.Empty(store.Read());
        store.Record("r/a", new Verdict(D1, false, At, "exited 1"));
        store.Record("r/a", new Verdict(D2, true, At, "exited 0"));
        store.Record("r/b", new Verdict(D1, true, At, "exited 0"));
        var again = new VerifiedStore(dir["state/verified.json"]).Read();
        Assert.Equal(new Verdict(D2, true, At, "exited 0"), again["r/a"]);
        Assert.Equal(2, again.Count);
    }

    [Fact]
    public void Verify_Store_AFileThatDoesNotParse_IsAnErrorNamingIt_NotAnEmptyStore()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir["verified.json"], "{ not json");
        var ex = Assert.Throws<PromotionException>(() => new VerifiedStore(dir["verified.json"]).Read());
        Assert.Contains("is not a verdict file", ex.Message, StringComparison.Ordinal);
        Assert.Throws<PromotionException>(() => new VerifiedStore(dir["verified.json"]).Record("r/a", new Verdict(D1, true, At, "x")));
        Assert.Equal("{ not json", File.ReadAllText(dir["verified.json"]));
    }

    [Fact]
    public void Verify_Options_AnEmptyProbe_AnEmptyCommand_AndABadImagePath_AreNamed()
    {
        var o = new PromotionOptions
        {
            VerifyCommand = [],
            VerifyCommands = new() { ["python311-sssd/base"] = [""], ["../etc"] = ["true"], ["ok/image"] = ["python3", "--version"] },
            VerifyTimeout = TimeSpan.Zero,
        };
        var problems = o.Validate(PromotionOptions.Section).ToList();
        Assert.Contains(problems, p => p.StartsWith("Builder:Promotion:VerifyCommand: must be a command", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("Builder:Promotion:VerifyCommands:python311-sssd/base: the command (first string) is empty", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("\"../etc\" is not an image path", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("Builder:Promotion:VerifyTimeout", StringComparison.Ordinal));
        Assert.DoesNotContain(problems, p => p.Contains("ok/image", StringComparison.Ordinal));
        Assert.Equal(["python3", "--version"], o.CommandFor("ok/image"));
        Assert.Equal(new PromotionOptions().VerifyCommand, new PromotionOptions().CommandFor("any"));
    }
}
