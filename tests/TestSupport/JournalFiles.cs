using System.Globalization;
using System.Text;

namespace Toolforge.Agents.TestSupport;

/// <summary>Real journal files, written by Debian's systemd-journal-remote from journal export format.</summary>
public static class JournalFiles
{
    public static string JournalRemote =>
        File.Exists("/lib/systemd/systemd-journal-remote") ? "/lib/systemd/systemd-journal-remote"
        : throw Peer.Missing("systemd-journal-remote", "install Debian package systemd-journal-remote");

    /// <summary>One entry in export format: FIELD=value lines (a value with a newline uses the binary form).</summary>
    public static void AppendEntry(Stream output, IEnumerable<KeyValuePair<string, string>> fields)
    {
        foreach (var (k, v) in fields)
        {
            if (v.Contains('\n', StringComparison.Ordinal))
            {
                var bytes = Encoding.UTF8.GetBytes(v);
                output.Write(Encoding.ASCII.GetBytes(k + "\n"));
                output.Write(BitConverter.GetBytes((ulong)bytes.Length)); // little-endian on x86_64, as the format wants
                output.Write(bytes);
                output.WriteByte((byte)'\n');
            }
            else
            {
                output.Write(Encoding.UTF8.GetBytes($"{k}={v}\n"));
            }
        }

        output.WriteByte((byte)'\n');
    }

    public static Dictionary<string, string> Entry(DateTimeOffset time, string host, string identifier, string message, int priority = 6,
        string? unit = null, int pid = 1234, bool kernel = false, long seqnum = 0)
    {
        var us = (time.ToUnixTimeMilliseconds() * 1000).ToString(CultureInfo.InvariantCulture);
        var d = new Dictionary<string, string>
        {
            ["__REALTIME_TIMESTAMP"] = us,
            ["__MONOTONIC_TIMESTAMP"] = (seqnum + 1).ToString(CultureInfo.InvariantCulture),
            ["_BOOT_ID"] = "0123456789abcdef0123456789abcdef",
            ["_HOSTNAME"] = host,
            ["PRIORITY"] = priority.ToString(CultureInfo.InvariantCulture),
            ["MESSAGE"] = message,
        };
        if (kernel)
        {
            d["_TRANSPORT"] = "kernel";
            d["SYSLOG_IDENTIFIER"] = "kernel";
            d["SYSLOG_FACILITY"] = "0";
        }
        else
        {
            d["_TRANSPORT"] = "stdout";
            d["SYSLOG_IDENTIFIER"] = identifier;
            d["_PID"] = pid.ToString(CultureInfo.InvariantCulture);
            d["_COMM"] = identifier;
            if (unit is not null)
            {
                d["_SYSTEMD_UNIT"] = unit;
            }
        }

        return d;
    }

    /// <summary>Writes the entries into a new journal file at <paramref name="path"/> (must end in .journal); returns every file written.</summary>
    public static async Task<IReadOnlyList<string>> WriteAsync(string path, IEnumerable<IReadOnlyDictionary<string, string>> entries)
    {
        using var export = new MemoryStream();
        foreach (var e in entries)
        {
            AppendEntry(export, e);
        }

        return await WriteExportAsync(path, export.ToArray());
    }

    /// <summary>
    /// Runs systemd-journal-remote. A large input makes it rotate: the older entries then sit in PATH-STEM@....journal
    /// files, so every file written is returned, oldest first, the path itself last.
    /// </summary>
    public static async Task<IReadOnlyList<string>> WriteExportAsync(string path, byte[] export)
    {
        var psi = new System.Diagnostics.ProcessStartInfo(JournalRemote) { RedirectStandardInput = true, RedirectStandardError = true, RedirectStandardOutput = true };
        psi.ArgumentList.Add("-o");
        psi.ArgumentList.Add(path);
        psi.ArgumentList.Add("-");
        using var p = System.Diagnostics.Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        await p.StandardInput.BaseStream.WriteAsync(export);
        p.StandardInput.Close();
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(5));
        if (p.ExitCode != 0 || !File.Exists(path))
        {
            throw new InvalidOperationException($"systemd-journal-remote failed ({p.ExitCode}): {await err}");
        }

        var dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        var stem = Path.GetFileNameWithoutExtension(path) + "@";
        return Directory.EnumerateFiles(dir).Where(f => Path.GetFileName(f).StartsWith(stem, StringComparison.Ordinal))
            .Order(StringComparer.Ordinal).Append(Path.GetFullPath(path)).ToList();
    }
}
