using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.NodeAgent.Journal;

public sealed class JournalOptions : IValidatedOptions
{
    public const string Section = "NodeAgent:Journal";

    public bool Enabled { get; set; } = true;

    /// <summary>Units whose messages the rules see (the kernel's are added when <see cref="Kernel"/> is on).</summary>
    public List<string> Units { get; set; } = ["kubelet.service", "docker.service", "containerd.service"];

    public bool Kernel { get; set; } = true;

    /// <summary>Read these journal files instead of the system journal (tests, archived journals).</summary>
    public List<string> Files { get; set; } = [];

    /// <summary>Rules; empty means the built-in defaults (OOM kill, hung task, ext4/XFS errors, runtime down, PLEG, docker deadline).</summary>
    public List<JournalRuleOptions> Rules { get; set; } = [];

    /// <summary>How often condition quiet periods and event windows are re-judged.</summary>
    public TimeSpan EvaluateInterval { get; set; } = TimeSpan.FromSeconds(10);

    public IEnumerable<string> Validate(string section)
    {
        var p = new List<string>();
        p.AddRange(Check.Positive(section, nameof(EvaluateInterval), EvaluateInterval));
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < Rules.Count; i++)
        {
            p.AddRange(Rules[i].Validate(Check.Key(section, $"Rules:{i}")));
            if (!names.Add(Rules[i].Name))
            {
                p.Add($"{Check.Key(section, $"Rules:{i}:Name")}: rule \"{Rules[i].Name}\" appears twice");
            }
        }

        return p;
    }
}
