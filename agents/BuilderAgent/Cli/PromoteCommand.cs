using System.CommandLine;
using Toolforge.Agents.BuilderAgent.Build;
using Toolforge.Agents.BuilderAgent.Images;
using Toolforge.Agents.BuilderAgent.Promotion;

namespace Toolforge.Agents.BuilderAgent.Cli;

/// <summary>
/// `promote IMAGE... | --all-verified`: points latest at exactly the verified testing digest of each image by copying
/// the manifest in the registry (same digest, no rebuild, no blob upload). An image not verified, whose verify
/// failed, or whose testing moved since, is refused in one line; exit 1 when any was. Reads the daemon's configuration file.
/// </summary>
internal static class PromoteCommand
{
    public static Command Create(Option<string?> rootConfig)
    {
        var images = new Argument<string[]>("image") { Description = "Image paths, e.g. python311-sssd/base", Arity = ArgumentArity.ZeroOrMore };
        var allVerified = new Option<bool>("--all-verified") { Description = "Every image whose last verify passed" };
        var config = new Option<string?>("--config") { Description = "The builder's configuration file (default /etc/toolforge-agents/builder-agent.json): registry, credentials, verdict file" };
        var promote = new Command("promote", "Point latest at exactly the verified testing digest (the manifest is copied in the registry: same digest, nothing rebuilt or uploaded)") { images, allVerified, config };
        promote.SetAction((pr, ct) =>
        {
            var named = pr.GetValue(images)!;
            if (named.Length > 0 == pr.GetValue(allVerified))
            {
                Console.Error.WriteLine("toolforge-builder-agent: promote: name images or give --all-verified (not both)");
                return Task.FromResult(BuilderCli.ExitBadInput);
            }

            return ConfiguredBuilder.RunAsync(pr.GetValue(config) ?? pr.GetValue(rootConfig), async c =>
            {
                var session = BuildSession.Open(c.Builder.Repository, c.Naming);
                using var registry = c.Registry();
                var promoter = new Promoter(registry, c.Store, c.Naming);
                var paths = named.Length > 0 ? named.Select(BuildSession.Normalize).ToList() : promoter.Verified(session.Graph);
                foreach (var p in paths.Where(p => session.Graph.Images.All(i => i.Path != p)))
                {
                    throw new RepositoryException($"{RegistryClient.Safe(p)} is not an image of {RegistryClient.Safe(c.Builder.Repository)}");
                }

                if (paths.Count == 0)
                {
                    Console.Out.WriteLine("nothing to promote: no image's last verify passed");
                    return 0;
                }

                var refused = 0;
                foreach (var path in paths)
                {
                    var r = await promoter.PromoteAsync(path, ct);
                    if (r.Ok)
                    {
                        Console.Out.WriteLine($"promoted {r.Path}: {r.Detail}");
                    }
                    else
                    {
                        refused++;
                        Console.Error.WriteLine($"toolforge-builder-agent: not promoted: {r.Path}: {r.Detail}");
                    }
                }

                Console.Out.WriteLine($"{paths.Count - refused} of {paths.Count} image(s) promoted");
                return refused == 0 ? 0 : BuilderCli.ExitFailed;
            });
        });
        return promote;
    }
}
