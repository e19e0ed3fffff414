using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Toolforge.Agents.Common.Files;

namespace Toolforge.Agents.NodeAgent.Remediation;

/// <summary>
/// A remediation record the agent keeps in its StateDirectory across restarts and reboots (the drain's, the
/// incident's): JSON, read bounded, written durably (temp file, fsync, rename; a device or symlink at the path refused).
/// </summary>
public static class StateRecord
{
    /// <summary>The saved record; null when there is none, or with <paramref name="problem"/> saying why when the file exists but cannot be read.</summary>
    public static T? Load<T>(string path, string what, int maxBytes, JsonTypeInfo<T> type, out string? problem)
        where T : class
    {
        problem = null;
        if (!File.Exists(path))
        {
            return null;
        }

        try
        {
            return JsonSerializer.Deserialize(BoundedFile.ReadText(what, path, maxBytes), type);
        }
        catch (Exception ex) when (ex is JsonException or IOException or UnauthorizedAccessException or InvalidDataException)
        {
            problem = $"{path}: {ex.Message}";
            return null;
        }
    }

    public static void Save<T>(string path, T record, JsonTypeInfo<T> type) => DurableFile.Write(path, JsonSerializer.Serialize(record, type));
}
