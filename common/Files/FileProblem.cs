namespace Toolforge.Agents.Common.Files;

/// <summary>
/// Why a file could not be read, in an admin's words, written after its path ("/etc/x.pem does not exist"): .NET says
/// "Could not find file" for a missing file and "Access to the path is denied" for a directory, neither of which an
/// admin can act on without guessing.
/// </summary>
public static class FileProblem
{
    /// <summary>Null when <paramref name="ex"/> is not a file-reading failure.</summary>
    public static string? Describe(Exception ex, string path) => ex switch
    {
        FileNotFoundException or DirectoryNotFoundException => "does not exist",
        UnauthorizedAccessException when Directory.Exists(path) => "is a directory, not a file",
        IOException when Directory.Exists(path) => "is a directory, not a file",
        UnauthorizedAccessException => "cannot be read (permission denied)",
        IOException io => $"cannot be read ({io.Message})",
        _ => null,
    };
}
