using System.Globalization;
using System.Text;
using Toolforge.Agents.BuilderAgent.Docker;
using Toolforge.Agents.BuilderAgent.Images;
using Toolforge.Agents.Common.Cli;

namespace Toolforge.Agents.BuilderAgent.Build;

/// <summary>
/// The one sequence the command line and the daemon both run: open the repository, render its graph, select the
/// images (with their ancestors and descendants unless single), plan (skip what is unchanged), run.
/// </summary>
internal sealed class BuildSession(ImageGraph graph, NamingOptions naming)
{
    public ImageGraph Graph { get; } = graph;

    public NamingOptions Naming { get; } = naming;

    /// <summary>Opens <paramref name="repository"/> and renders every image for <paramref name="naming"/>.</summary>
    public static BuildSession Open(string repository, NamingOptions naming) => new(ImageRepository.Open(repository).Graph(naming), naming);

    /// <summary>The build order for <paramref name="images"/>; throws <see cref="RepositoryException"/> for a path not in the graph.</summary>
    public IReadOnlyList<string> Select(IEnumerable<string> images, bool single) => Graph.Select(images.Select(Normalize), single);

    public async Task<IReadOnlyList<ImageReport>> RunAsync(BuilderDocker docker, IReadOnlyList<string> order, BuildSettings settings, IBuildLog log, CancellationToken ct)
    {
        var runner = new BuildRunner(docker, Graph, settings, log);
        var plan = await runner.PlanAsync(order, ct).ConfigureAwait(false);
        return await runner.RunAsync(plan, ct).ConfigureAwait(false);
    }

    /// <summary>"python311-sssd/base/ " → "python311-sssd/base".</summary>
    public static string Normalize(string path) => path.Trim().TrimEnd('/');

    /// <summary>The table both the CLI and the daemon's build log end with.</summary>
    public static string Summary(IReadOnlyList<ImageReport> reports)
    {
        var sb = new StringBuilder("\n");
        var built = reports.Count(r => r.Result is "built" or "pushed");
        var unchanged = reports.Count(r => r.Result == "unchanged");
        sb.Append(Output.Table(["IMAGE", "RESULT", "DURATION", "DIGEST"],
            reports.Select(r => (IReadOnlyList<string>)[r.Name, r.Result, $"{r.Duration.TotalSeconds:0.0}s", r.Digest.Length > 0 ? r.Digest : "-"]),
            width: Output.TerminalWidth(), colourColumn: 1));
        foreach (var r in reports.Where(r => r.Error.Length > 0))
        {
            sb.Append(CultureInfo.InvariantCulture, $"{r.Path}: {r.Result}: {r.Error}\n");
        }

        sb.Append(CultureInfo.InvariantCulture, $"{reports.Count} image(s): {built} built, {unchanged} unchanged, {reports.Count(r => !r.Ok)} failed or skipped\n");
        if (reports.Count > 0 && built == 0 && unchanged == reports.Count)
        {
            sb.Append("nothing to build: every image is unchanged\n");
        }

        return sb.ToString();
    }
}
