namespace Toolforge.Agents.TestSupport;

/// <summary>
/// The puppet module (packaging/puppet/toolforge_agents) and what it writes: every file of every role class as puppet
/// renders it from the real manifests, templates and hiera data (rspec-puppet compiles each class's catalogue;
/// spec/render/render_configs.rb writes each managed file's content), so a daemon's test can bind the very JSON puppet
/// would put on a host. Rendered once per test process, into a temporary directory removed when the process exits.
/// </summary>
public static class PuppetModule
{
    private static readonly Lazy<Task<string>> Rendered = new(RenderAsync);

    public static string Root => Path.Combine(Run.RepoRoot, "packaging", "puppet", "toolforge_agents");

    /// <summary>
    /// The file <paramref name="name"/> (its base name, e.g. node-agent.json) as the case <paramref name="renderCase"/>
    /// of spec/render/render_configs.rb renders it: worker, worker_changed, builder, builder_changed, control,
    /// control_postgresql, syslog, monitoring.
    /// </summary>
    public static async Task<string> RenderedFileAsync(string renderCase, string name)
    {
        var path = Path.Combine(await Rendered.Value, renderCase, name);
        return File.Exists(path) ? path : throw new FileNotFoundException($"puppet's case {renderCase} wrote no {name}", path);
    }

    private static async Task<string> RenderAsync()
    {
        var rspec = Peer.Require("rspec", "ruby-rspec-puppet");
        Peer.Require("puppet", "puppet");
        var dir = Directory.CreateTempSubdirectory("tfa-puppet-render-").FullName;
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (IOException)
            {
            }
        };
        var r = await Run.ProcessAsync(rspec, ["spec/render/render_configs.rb"], TimeSpan.FromMinutes(3),
            env: new Dictionary<string, string> { ["TFA_PUPPET_RENDER_DIR"] = dir }, workingDirectory: Root);
        return r.ExitCode == 0 ? dir : throw new InvalidOperationException($"rendering the puppet module's files failed: {r}");
    }
}
