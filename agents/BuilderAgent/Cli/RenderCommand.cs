using System.CommandLine;
using Toolforge.Agents.BuilderAgent.Build;
using Toolforge.Agents.BuilderAgent.Images;

namespace Toolforge.Agents.BuilderAgent.Cli;

/// <summary>`render IMAGE`: the rendered Dockerfile of an image.</summary>
internal static class RenderCommand
{
    public static Command Create(BuilderCli.Flags f)
    {
        var renderImage = new Argument<string>("image");
        var render = new Command("render", "Print the rendered Dockerfile of an image") { renderImage, f.Repo, f.Registry, f.Prefix, f.Tag };
        render.SetAction(pr => BuilderCli.GuardSync(() =>
        {
            var repo = ImageRepository.Open(BuilderCli.Repository(pr, f));
            Console.Out.Write(repo.Render(repo.Find(BuildSession.Normalize(pr.GetValue(renderImage)!)), BuilderCli.Naming(pr, f)));
            return 0;
        }));
        return render;
    }
}
