using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Toolforge.Agents.TestSupport;

/// <summary>Journal files of numbered entries across several units, and checks of what the receiver got.</summary>
public static partial class Numbered
{
    public static readonly string[] Apps = ["kubelet", "dockerd", "kube-proxy", "calico-node"];

    /// <summary>Entry i (from <paramref name="firstSeq"/>): app Apps[i % 4], pid 1000 + i % 4, priority i % 8, message "seq=i ...".</summary>
    public static async Task<string[]> WriteAsync(string path, int count, string host = "worker-9", int multiLineEvery = 0, long startMicros = 1_750_000_000_000_000, int firstSeq = 0)
    {
        var sb = new MemoryStream();
        var w = new StreamWriter(sb, new UTF8Encoding(false)) { NewLine = "\n" };
        for (var i = firstSeq; i < firstSeq + count; i++)
        {
            var app = Apps[i % Apps.Length];
            w.Write($"__REALTIME_TIMESTAMP={(startMicros + i).ToString(CultureInfo.InvariantCulture)}\n_BOOT_ID=0123456789abcdef0123456789abcdef\n_HOSTNAME={host}\nSYSLOG_IDENTIFIER={app}\n_COMM={app}\n_PID={1000 + (i % 4)}\nPRIORITY={i % 8}\nSYSLOG_FACILITY=3\n_SYSTEMD_UNIT={app}.service\n");
            if (multiLineEvery > 0 && i % multiLineEvery == 0)
            {
                w.Flush();
                JournalFiles.AppendEntry(sb, [new("MESSAGE", $"seq={i} first line\nsecond line of {i}")]);
                continue; // AppendEntry wrote the blank line
            }

            w.Write($"MESSAGE=seq={i} the message of entry {i}\n\n");
        }

        w.Flush();
        var files = await JournalFiles.WriteExportAsync(path, sb.ToArray());
        return files.SelectMany(f => new[] { "--journal-file", f }).ToArray();
    }

    [GeneratedRegex(@"seq=(\d+)")]
    private static partial Regex Seq();

    public static int? SeqOf(string line) => Seq().Match(line) is { Success: true } m ? int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) : null;

    /// <summary>All sequence numbers the receiver holds, with how often each arrived.</summary>
    public static Dictionary<int, int> Received(RsyslogReceiver r) => r.Lines().Values.SelectMany(l => l)
        .Select(SeqOf).Where(s => s is not null).GroupBy(s => s!.Value).ToDictionary(g => g.Key, g => g.Count());
}
