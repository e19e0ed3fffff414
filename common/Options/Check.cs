using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Toolforge.Agents.Common.Options;

/// <summary>Small helpers that build the "Key: reason" strings the same way everywhere.</summary>
public static class Check
{
    public static string Key(string section, string key) => section.Length == 0 ? key : $"{section}:{key}";

    public static IEnumerable<string> Port(string section, string key, int value, bool allowZero = false)
    {
        if (value < (allowZero ? 0 : 1) || value > 65535)
        {
            yield return $"{Key(section, key)}: must be a TCP port between {(allowZero ? 0 : 1)} and 65535 (got {value})";
        }
    }

    /// <summary>The longest duration a timer or a delay takes (int.MaxValue milliseconds, about 24.8 days).</summary>
    public static readonly TimeSpan LongestDuration = TimeSpan.FromMilliseconds(int.MaxValue);

    public static IEnumerable<string> Positive(string section, string key, TimeSpan value)
    {
        if (value <= TimeSpan.Zero)
        {
            yield return $"{Key(section, key)}: must be a positive duration such as \"00:00:30\" (got {value})";
        }
        else if (value > LongestDuration)
        {
            yield return $"{Key(section, key)}: must be at most {LongestDuration:d\\.hh\\:mm\\:ss} (got {value})";
        }
    }

    /// <summary>
    /// A certificate and its private key (PEM), checked at start as the daemon will load them: a certificate path that
    /// holds a key, a key of another certificate, a file that is not PEM are named here, not found at the first call.
    /// </summary>
    public static IEnumerable<string> CertificateAndKey(string section, string certificateKey, string? certificate, string keyKey, string? key)
    {
        // A path that is not there (or is a directory) is said at once; what is there may be mid-write.
        var missing = FileExists(section, certificateKey, certificate).Concat(FileExists(section, keyKey, key)).ToList();
        return missing.Count > 0 ? missing : Settled(() => CertificateAndKeyNow(section, certificateKey, certificate, keyKey, key));
    }

    /// <summary>
    /// How long a file that puppet may be rewriting (a renewal writes the certificate, then the key; a CA bundle or a
    /// snapshot replaced in place) is given to settle before it is called a configuration problem: the units do not
    /// restart on exit 78, so a start that met a half-written file must not stop the daemon for good.
    /// </summary>
    public static readonly TimeSpan SettleTime = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Runs <paramref name="check"/> until it finds no problem or <see cref="SettleTime"/> has passed (every half
    /// second): a problem that lasts is an admin's to fix; one that goes away was a file being written.
    /// </summary>
    public static IReadOnlyList<string> Settled(Func<IReadOnlyList<string>> check)
    {
        var problems = check();
        var until = DateTime.UtcNow + SettleTime;
        while (problems.Count > 0 && DateTime.UtcNow < until)
        {
            Thread.Sleep(500);
            problems = check();
        }

        return problems;
    }

    private static IReadOnlyList<string> CertificateAndKeyNow(string section, string certificateKey, string? certificate, string keyKey, string? key)
    {
        try
        {
            using var _ = Tls.Certificates.LoadPair(certificate!, key!);
            return [];
        }
        catch (Tls.TlsFileException ex)
        {
            return [$"{Key(section, ex.What == "key" ? keyKey : certificateKey)}: {ex.Path} {ex.Reason}"];
        }
    }

    /// <summary>A CA bundle: a readable PEM file holding at least one certificate.</summary>
    public static IEnumerable<string> CaBundle(string section, string key, string? path)
    {
        var missing = FileExists(section, key, path).ToList();
        return missing.Count > 0 ? missing : Settled(() => CaBundleNow(section, key, path));
    }

    private static IReadOnlyList<string> CaBundleNow(string section, string key, string? path)
    {
        var problems = FileExists(section, key, path).ToList();
        if (problems.Count > 0)
        {
            return problems;
        }

        try
        {
            _ = Tls.Certificates.LoadBundle(path!);
            return [];
        }
        catch (System.Security.Cryptography.CryptographicException ex)
        {
            return [$"{Key(section, key)}: {ex.Message}"];
        }
    }

    public static IEnumerable<string> Range(string section, string key, long value, long min, long max)
    {
        if (value < min || value > max)
        {
            yield return $"{Key(section, key)}: must be between {min} and {max} (got {value})";
        }
    }

    public static IEnumerable<string> Required(string section, string key, string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            yield return $"{Key(section, key)}: is required";
        }
    }

    public static IEnumerable<string> FileExists(string section, string key, string? path)
    {
        if (string.IsNullOrWhiteSpace(path))
        {
            yield return $"{Key(section, key)}: is required";
        }
        else if (Directory.Exists(path))
        {
            yield return $"{Key(section, key)}: {path} is a directory, not a file";
        }
        else if (!File.Exists(path))
        {
            yield return $"{Key(section, key)}: file {path} does not exist";
        }
    }

    /// <summary>A file the program replaces (<see cref="Files.DurableFile"/>): a regular file or nothing must be there.</summary>
    public static IEnumerable<string> ReplaceableFile(string section, string key, string? path)
    {
        if (!string.IsNullOrWhiteSpace(path) && Files.DurableFile.Problem(path) is { } problem)
        {
            yield return $"{Key(section, key)}: {problem}";
        }
    }

    public static IEnumerable<string> OneOf(string section, string key, string? value, params string[] allowed)
    {
        if (value is null || !allowed.Contains(value, StringComparer.OrdinalIgnoreCase))
        {
            yield return $"{Key(section, key)}: must be one of {string.Join(", ", allowed)} (got \"{value}\")";
        }
    }
}
