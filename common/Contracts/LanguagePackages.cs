namespace Toolforge.Agents.Common.Contracts;

/// <summary>
/// A language package of an image (issue 27: from a lock file the image names), as the coordinator stores and
/// `agentctl images --package` asks for it: "ECOSYSTEM:NAME" (npm:left-pad, npm:@types/node, gem:rack,
/// composer:monolog/monolog, pypi:requests) with an empty architecture. A Debian package name never holds ':', so the
/// two kinds cannot be taken for each other. Nothing these accept needs escaping on a terminal.
/// </summary>
public static class LanguagePackages
{
    public const string Npm = "npm";
    public const string Gem = "gem";
    public const string Composer = "composer";
    public const string PyPi = "pypi";

    public static readonly IReadOnlyList<string> Ecosystems = [Npm, Gem, Composer, PyPi];

    /// <summary>
    /// A name as its ecosystem compares it: PyPI's PEP 503 form (lower case, runs of - _ . as one -); npm and composer
    /// names are lower case; a gem's name is kept as written (RubyGems compares it exactly).
    /// </summary>
    public static string Normalize(string ecosystem, string name)
    {
        if (ecosystem == PyPi)
        {
            var b = new System.Text.StringBuilder(name.Length);
            foreach (var c in name.ToLowerInvariant())
            {
                var d = c is '_' or '.' ? '-' : c;
                if (d != '-' || b.Length == 0 || b[^1] != '-')
                {
                    b.Append(d);
                }
            }

            return b.ToString();
        }

        return ecosystem is Npm or Composer ? name.ToLowerInvariant() : name;
    }

    /// <summary>A query's "ECOSYSTEM:NAME" in the stored form (<see cref="Normalize"/>); anything else as it is.</summary>
    public static string NormalizeQualified(string qualified) =>
        qualified.IndexOf(':') is var colon and > 0 && Ecosystems.Contains(qualified[..colon])
            ? Qualified(qualified[..colon], Normalize(qualified[..colon], qualified[(colon + 1)..]))
            : qualified;

    /// <summary>"ECOSYSTEM:NAME".</summary>
    public static string Qualified(string ecosystem, string name) => ecosystem + ":" + name;

    /// <summary>
    /// A qualified name: a known ecosystem, ':', then 1 to 200 of letters, digits and @ / . _ - ~ + (npm scopes,
    /// composer vendors), not starting with '.', '/' or '-'.
    /// </summary>
    public static bool IsName(string s)
    {
        var colon = s.IndexOf(':');
        if (colon <= 0 || !Ecosystems.Contains(s[..colon]))
        {
            return false;
        }

        var ecosystem = s[..colon];
        var name = s[(colon + 1)..];
        var slashes = name.Count(c => c == '/');
        // A namespace only where the ecosystem has one: npm's @scope/name, composer's vendor/name.
        var shape = ecosystem switch
        {
            Npm => slashes == 0 ? !name.Contains('@', StringComparison.Ordinal) : slashes == 1 && name[0] == '@' && name.IndexOf('@', 1) < 0,
            Composer => slashes == 1 && !name.Contains('@', StringComparison.Ordinal),
            _ => slashes == 0 && !name.Contains('@', StringComparison.Ordinal),
        };
        return shape && name.Length is >= 1 and <= 200 && name[0] is not ('.' or '/' or '-') && !name.EndsWith('/')
            && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '@' or '/' or '.' or '_' or '-' or '~' or '+');
    }

    /// <summary>1 to 128 of letters, digits and . + - ~ _ ! (semver, gem and PEP 440 versions).</summary>
    public static bool IsVersion(string s) =>
        s.Length is >= 1 and <= 128 && s.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '+' or '-' or '~' or '_' or '!');

    /// <summary>
    /// What is wrong with asking for package <paramref name="name"/> (at <paramref name="version"/>, null: any), or null:
    /// a Debian package name and version, or a language package's "ECOSYSTEM:NAME" and its version. One line, escaped.
    /// </summary>
    public static string? QueryProblem(string name, string? version)
    {
        var language = name.Contains(':', StringComparison.Ordinal);
        if (language ? !IsName(name) : !DebianPackages.IsName(name))
        {
            return language
                ? $"\"{Cli.Output.Escape(ReportLimits.Cut(name, 220))}\" is not a language package (ECOSYSTEM:NAME, ECOSYSTEM one of {string.Join(", ", Ecosystems)}; NAME 1 to 200 of letters, digits and @ / . _ - ~ +)"
                : $"\"{Cli.Output.Escape(ReportLimits.Cut(name, 140))}\" is not a Debian package name (2 to {ReportLimits.MaxPackageName} of a-z 0-9 + - ., starting with a letter or digit) nor ECOSYSTEM:NAME";
        }

        if (version is not null && (version.Length == 0 || (language ? !IsVersion(version) : !DebianPackages.IsVersion(version))))
        {
            return language
                ? $"\"{Cli.Output.Escape(ReportLimits.Cut(version, 140))}\" is not a language package's version (1 to 128 of letters, digits and . + - ~ _ !)"
                : $"\"{Cli.Output.Escape(ReportLimits.Cut(version, 260))}\" is not a Debian version (1 to {ReportLimits.MaxPackageVersion} of A-Z a-z 0-9 . + - ~ :)";
        }

        return null;
    }
}
