using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Packaging.Tests;

/// <summary>
/// `X completion zsh` and `X completion fish` of every program, in the real shells: an interactive zsh in a tmux terminal
/// completes a subcommand on TAB (and a subcommand's subcommand); fish's own `complete -C` lists every subcommand, and
/// nothing hidden. (bash: tests/AgentCtl.Tests/CompletionTests, which also completes node names from a coordinator.)
/// </summary>
public sealed class ShellCompletionTests
{
    /// <summary>Each program, a prefix typed, what TAB must make of it, and the subcommands it has.</summary>
    public static TheoryData<string, string, string, string[]> Programs => new()
    {
        { "agentctl", "fin", "findings", ["nodes", "node", "findings", "builds", "build", "promote", "build-log", "watch", "pki", "completion"] },
        { "toolforge-node-agent", "audit nf", "audit nftables", ["audit", "check", "completion"] },
        { "toolforge-builder-agent", "reb", "rebuild-all", ["build", "rebuild-all", "plan", "render", "graph", "clean", "verify", "promote", "serve", "completion"] },
        { "toolforge-log-shipper", "sh", "ship", ["ship", "completion"] },
        { "toolforge-coordinator", "mig", "migrate-store", ["migrate-store", "completion"] },
    };

    /// <summary>A folder holding PROGRAM, a script that runs the built program: the shells find it on PATH by its name.</summary>
    private static async Task<string> BinAsync(TempDir dir, string program)
    {
        var bin = dir["bin"];
        Directory.CreateDirectory(bin);
        var path = Path.Combine(bin, program);
        await File.WriteAllTextAsync(path, $"#!/bin/sh\nexec dotnet {Run.ToolPath(program)} \"$@\"\n");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return bin;
    }

    private static async Task<string> ScriptAsync(string program, string shell)
    {
        var r = await Run.DotnetToolAsync(program, ["completion", shell]);
        Assert.True(r.ExitCode == 0, r.ToString());
        return r.Stdout;
    }

    [Theory]
    [MemberData(nameof(Programs))]
    public async Task Zsh_CompletesASubcommandOnTab(string program, string typed, string completed, string[] subcommands)
    {
        Peer.Require("zsh", "zsh");
        _ = subcommands;
        using var dir = new TempDir();
        var bin = await BinAsync(dir, program);
        await File.WriteAllTextAsync(dir["completion.zsh"], await ScriptAsync(program, "zsh"));
        // The documented use: compinit, then the script sourced.
        Directory.CreateDirectory(dir["zdot"]);
        await File.WriteAllTextAsync(dir["zdot/.zshrc"], $"PATH={bin}:$PATH\nPS1='$ '\nautoload -U compinit && compinit -u\nsource {dir["completion.zsh"]}\n");
        await using var tmux = await TmuxSession.StartAsync(dir["tmux.sock"], $"env HOME={dir.Path} ZDOTDIR={dir["zdot"]} zsh -i");
        Assert.True(await tmux.ShowsAsync("$", TimeSpan.FromSeconds(20)), tmux.Screen());
        await tmux.KeysAsync($"{program} {typed}", "Tab");
        Assert.True(await tmux.ShowsAsync($"$ {program} {completed} ", TimeSpan.FromSeconds(30)), tmux.Screen());
    }

    /// <summary>The zsh script also works as an autoloaded function file (saved as _PROGRAM in $fpath, the #compdef way).</summary>
    [Theory]
    [InlineData("agentctl", "fin", "findings")]
    [InlineData("toolforge-node-agent", "ch", "check")]
    public async Task Zsh_TheScriptWorksFromFpath(string program, string typed, string completed)
    {
        Peer.Require("zsh", "zsh");
        using var dir = new TempDir();
        var bin = await BinAsync(dir, program);
        Directory.CreateDirectory(dir["functions"]);
        await File.WriteAllTextAsync(Path.Combine(dir["functions"], "_" + program), await ScriptAsync(program, "zsh"));
        Directory.CreateDirectory(dir["zdot"]);
        await File.WriteAllTextAsync(dir["zdot/.zshrc"], $"PATH={bin}:$PATH\nPS1='$ '\nfpath=({dir["functions"]} $fpath)\nautoload -U compinit && compinit -u -d {dir["zcompdump"]}\n");
        await using var tmux = await TmuxSession.StartAsync(dir["tmux.sock"], $"env HOME={dir.Path} ZDOTDIR={dir["zdot"]} zsh -i");
        Assert.True(await tmux.ShowsAsync("$", TimeSpan.FromSeconds(20)), tmux.Screen());
        await tmux.KeysAsync($"{program} {typed}", "Tab");
        Assert.True(await tmux.ShowsAsync($"$ {program} {completed} ", TimeSpan.FromSeconds(30)), tmux.Screen());
    }

    /// <summary>Whatever the program answers, zsh inserts candidates as text: a candidate reading $(touch FILE) is never run.</summary>
    [Fact]
    public async Task Zsh_NeverRunsACandidate()
    {
        Peer.Require("zsh", "zsh");
        using var dir = new TempDir();
        var marker = dir["PWNED"];
        var bin = dir["bin"];
        Directory.CreateDirectory(bin);
        await File.WriteAllTextAsync(dir["completion.zsh"], await ScriptAsync("agentctl", "zsh"));
        // A stand-in agentctl whose suggestions are hostile.
        await File.WriteAllTextAsync(Path.Combine(bin, "agentctl"), $"#!/bin/sh\nprintf '%s\\n' 'be$(touch {marker})' 'be`touch {marker}`'\n");
        File.SetUnixFileMode(Path.Combine(bin, "agentctl"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        Directory.CreateDirectory(dir["zdot"]);
        await File.WriteAllTextAsync(dir["zdot/.zshrc"], $"PATH={bin}:$PATH\nPS1='$ '\ncd {dir.Path}\nautoload -U compinit && compinit -u\nsource {dir["completion.zsh"]}\n");
        await using var tmux = await TmuxSession.StartAsync(dir["tmux.sock"], $"env HOME={dir.Path} ZDOTDIR={dir["zdot"]} zsh -i");
        Assert.True(await tmux.ShowsAsync("$", TimeSpan.FromSeconds(20)), tmux.Screen());
        await tmux.KeysAsync("agentctl node be", "Tab", "Tab");
        Assert.True(await tmux.ShowsAsync("touch", TimeSpan.FromSeconds(20)), tmux.Screen()); // offered, as text
        await tmux.KeysAsync("C-u", "Enter");
        Assert.True(await tmux.ShowsAsync("$", TimeSpan.FromSeconds(10)), tmux.Screen());
        Assert.False(File.Exists(marker), "a candidate was run as a command");
    }

    [Theory]
    [MemberData(nameof(Programs))]
    public async Task Fish_ListsEverySubcommand_AndCompletesAPrefix(string program, string typed, string completed, string[] subcommands)
    {
        Peer.Require("fish", "fish");
        using var dir = new TempDir();
        var bin = await BinAsync(dir, program);
        await File.WriteAllTextAsync(dir["completion.fish"], await ScriptAsync(program, "fish"));
        var env = new Dictionary<string, string> { ["HOME"] = dir.Path, ["PATH"] = $"{bin}:{Environment.GetEnvironmentVariable("PATH")}" };

        async Task<List<string>> Complete(string line)
        {
            var r = await Run.ProcessAsync("fish", ["--no-config", "-c", $"source {dir["completion.fish"]}; complete -C '{line}'"], TimeSpan.FromSeconds(60), env);
            Assert.True(r.ExitCode == 0, r.ToString());
            return r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('\t')[0]).ToList();
        }

        var all = await Complete($"{program} ");
        Assert.All(subcommands, s => Assert.Contains(s, all));
        Assert.DoesNotContain("man", all); // hidden

        var words = typed.Split(' ');
        var prefixed = await Complete($"{program} {typed}");
        Assert.Equal([completed.Split(' ')[^1]], prefixed.Where(c => !c.StartsWith('-')).ToList());
        Assert.All(prefixed, c => Assert.StartsWith(words[^1], c, StringComparison.Ordinal));
    }
}
