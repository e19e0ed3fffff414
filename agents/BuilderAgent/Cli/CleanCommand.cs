using System.CommandLine;
using Toolforge.Agents.BuilderAgent.Docker;

namespace Toolforge.Agents.BuilderAgent.Cli;

/// <summary>`clean`: remove exited containers, then dangling images; each failure is reported.</summary>
internal static class CleanCommand
{
    public static Command Create(BuilderCli.Flags f)
    {
        var clean = new Command("clean", "Remove exited containers, then dangling images (failures are reported)") { f.DockerHost };
        clean.SetAction((pr, ct) => BuilderCli.Guard(async () =>
        {
            using var docker = BuilderCli.Docker(pr.GetValue(f.DockerHost)!);
            return await CleanCommand.RunAsync(docker, ct);
        }));
        return clean;
    }

    internal static async Task<int> RunAsync(BuilderDocker docker, CancellationToken ct)
    {
        var problems = 0;
        var containers = await docker.ExitedContainersAsync(ct);
        foreach (var c in containers)
        {
            try
            {
                await docker.RemoveContainerAsync(c.ID, ct);
                Console.Out.WriteLine($"removed exited container {c.ID[..12]} ({string.Join(",", c.Names ?? [])})");
            }
            catch (DockerOperationException ex)
            {
                problems++;
                Console.Error.WriteLine($"cannot remove container {c.ID[..12]}: {ex.Message}");
            }
        }

        var images = await docker.DanglingImagesAsync(ct);
        foreach (var i in images)
        {
            try
            {
                await docker.RemoveImageAsync(i.ID, ct);
                Console.Out.WriteLine($"removed dangling image {i.ID}");
            }
            catch (DockerOperationException ex)
            {
                problems++;
                Console.Error.WriteLine($"cannot remove image {i.ID}: {ex.Message}");
            }
        }

        Console.Out.WriteLine($"clean: {containers.Count} exited container(s), {images.Count} dangling image(s), {problems} failure(s)");
        return problems == 0 ? 0 : BuilderCli.ExitFailed;
    }
}
