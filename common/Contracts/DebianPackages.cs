namespace Toolforge.Agents.Common.Contracts;

/// <summary>
/// What a Debian package's name, version and architecture may be (Debian policy 5.6.1, 5.6.12; dpkg's architecture
/// names), within <see cref="ReportLimits"/>: the builder refuses an image's dpkg database that breaks them, the
/// coordinator an inventory that does. Nothing these accept needs escaping on a terminal.
/// </summary>
public static class DebianPackages
{
    /// <summary>Lower case letters, digits, + - . ; at least two characters, starting with a letter or digit.</summary>
    public static bool IsName(string s) =>
        s.Length is >= 2 and <= ReportLimits.MaxPackageName && (char.IsAsciiLetterLower(s[0]) || char.IsAsciiDigit(s[0]))
        && s.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '+' or '-' or '.');

    /// <summary>[epoch:]upstream[-revision]: letters, digits, . + - ~ : (empty for a package that is not installed).</summary>
    public static bool IsVersion(string s) =>
        s.Length <= ReportLimits.MaxPackageVersion && s.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '+' or '-' or '~' or ':');

    /// <summary>amd64, all, arm64, i386, …: lower case letters, digits and -.</summary>
    public static bool IsArchitecture(string s) =>
        s.Length <= ReportLimits.MaxPackageArchitecture && s.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-');
}
