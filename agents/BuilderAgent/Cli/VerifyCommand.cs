using System.CommandLine;
using Toolforge.Agents.BuilderAgent.Build;
using Toolforge.Agents.BuilderAgent.Images;
using Toolforge.Agents.BuilderAgent.Promotion;

namespace Toolforge.Agents.BuilderAgent.Cli;

/// <summary>
/// `verify IMAGE... | --all`: runs each image's probe (Builder:Promotion) on the digest its testing tag names in the
/// registry now, and records the verdict; exit 1 when any did not pass. Reads the daemon's configuration file.
/// </summary>
internal static class VerifyCommand
{
    public static Command Create(Option<string?> rootConfig)
    {
        var images = new Argument<string[]>("image") { Description = "Image paths, e.g. python311-sssd/base", Arity = ArgumentArity.ZeroOrMore };
        var all = new Option<bool>("--all") { Description = "Every image of the repository that has a testing tag in the registry" };
        var config = new Option<string?>("--config") { Description = "The builder's configuration file (default /etc/toolforge-agents/builder-agent.json): registry, probes, verdict file" };
        var verify = new Command("verify", "Run each image's verify probe on its testing digest and record the verdict (promote needs a passed one)") { images, all, config };
        verify.SetAction((pr, ct) =>
        {
            var named = pr.GetValue(images)!;
            if (named.Length > 0 == pr.GetValue(all))
            {
                Console.Error.WriteLine("toolforge-builder-agent: verify: name images or give --all (not both)");
                return Task.FromResult(BuilderCli.ExitBadInput);
            }

            return ConfiguredBuilder.RunAsync(pr.GetValue(config) ?? pr.GetValue(rootConfig), async c =>
            {
                var session = BuildSession.Open(c.Builder.Repository, c.Naming);
                var paths = named.Length > 0 ? named.Select(BuildSession.Normalize).ToList() : session.Graph.Images.Select(i => i.Path).ToList();
                foreach (var p in paths.Where(p => session.Graph.Images.All(i => i.Path != p)))
                {
                    throw new RepositoryException($"{RegistryClient.Safe(p)} is not an image of {RegistryClient.Safe(c.Builder.Repository)}");
                }

                using var registry = c.Registry();
                var verifier = new ImageVerifier(c.Docker, registry, c.Store, c.Promotion, c.Naming, TimeProvider.System);
                var failed = 0;
                foreach (var path in paths)
                {
                    VerifyResult r;
                    try
                    {
                        r = await verifier.VerifyAsync(path, null, ct);
                    }
                    catch (PromotionException ex)
                    {
                        // the registry or the verdict file: this image is not verified; the others are still tried
                        r = new VerifyResult(path, ImageVerifier.Repository(c.Naming, path), string.Empty, false, ex.Message);
                    }

                    if (pr.GetValue(all) && r.Digest.Length == 0 && r.Detail.EndsWith("(build and push it first)", StringComparison.Ordinal))
                    {
                        continue; // --all: an image never pushed is not this command's to judge
                    }

                    failed += r.Passed ? 0 : 1;
                    Console.Out.WriteLine($"{(r.Passed ? "verified" : "FAILED")} {r.Path} {(r.Digest.Length > 0 ? r.Digest : "-")}: {r.Detail}");
                }

                return failed == 0 ? 0 : BuilderCli.ExitFailed;
            });
        });
        return verify;
    }
}
