using Toolforge.Agents.Common.Cli;

namespace Toolforge.Agents.AgentCtl.Tests;

/// <summary>How a table is fitted to a width (the terminal's): the widest columns give way, the message keeps room.</summary>
public sealed class TableTests
{
    private static readonly string[] Headers = ["NODE", "KIND", "SUBJECT", "SINCE", "MESSAGE"];

    [Fact]
    public void OneLongSubject_DoesNotShrinkEveryMessageToNothing()
    {
        IReadOnlyList<string>[] rows =
        [
            ["tools-k8s-worker-1", "missing-rule", new string('s', 150), "5m ago", "no KUBE-SERVICES rule sends 10.96.0.1:443 to its endpoints"],
            ["tools-k8s-worker-2", "stale-rule", "default/kubernetes:https", "1h ago", "a REJECT rule for a port that has endpoints"],
        ];
        var text = Output.Table(Headers, rows, width: 100);
        var lines = text.TrimEnd('\n').Split('\n');
        Assert.All(lines, l => Assert.True(l.Length <= 100, $"{l.Length}: {l}"));
        var messageColumn = lines[0].IndexOf("MESSAGE", StringComparison.Ordinal);
        Assert.True(100 - messageColumn >= 30, $"the message column starts at {messageColumn}");
        Assert.Contains("…", lines[1], StringComparison.Ordinal); // the long subject is cut, with the mark
        Assert.EndsWith("a REJECT rule for a port that has endpoints", lines[2], StringComparison.Ordinal); // fits: not cut
    }

    [Fact]
    public void NoWidth_MeansEveryCharacter()
    {
        IReadOnlyList<string>[] rows = [["n", "k", new string('s', 300), "now", new string('m', 500)]];
        var text = Output.Table(Headers, rows, width: null);
        Assert.Contains(new string('m', 500), text, StringComparison.Ordinal);
        Assert.DoesNotContain("…", text, StringComparison.Ordinal);
    }

    [Fact]
    public void ATableThatFits_IsNotTouched()
    {
        IReadOnlyList<string>[] rows = [["n", "k", "s", "now", "short message"]];
        Assert.Equal(Output.Table(Headers, rows, width: null), Output.Table(Headers, rows, width: 200));
    }
}
