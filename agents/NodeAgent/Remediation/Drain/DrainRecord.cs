using System.Text.Json;
using System.Text.Json.Serialization;
using Toolforge.Agents.Common.Files;

namespace Toolforge.Agents.NodeAgent.Remediation.Drain;

/// <summary>
/// The drain's own record on this host (StateDirectory/node-agent.remediation-drain, written with DurableFile as the
/// kubelet restart's is): the incident, its step and when it started, so an agent restarted mid-drain resumes the same
/// incident with the same deadline instead of starting a fresh one.
/// </summary>
public sealed record DrainRecord(
    [property: JsonPropertyName("incident")] string Incident,
    [property: JsonPropertyName("step")] string Step,
    [property: JsonPropertyName("started")] DateTimeOffset Started)
{
    /// <summary>What held the drain when last said (check remediation.drain, warning), said again by an agent restarted mid-incident.</summary>
    [JsonPropertyName("said")]
    public string? Said { get; init; }

    public static string PathIn(string stateDirectory) => Path.Combine(stateDirectory, "node-agent.remediation-drain");

    public static DrainRecord? Load(string stateDirectory) => Load(stateDirectory, out _);

    /// <summary>The saved record; null with <paramref name="problem"/> saying why when the file exists but cannot be read.</summary>
    public static DrainRecord? Load(string stateDirectory, out string? problem) =>
        StateRecord.Load(PathIn(stateDirectory), "the drain record", 4096, DrainJson.Default.DrainRecord, out problem);

    public void Save(string stateDirectory) => StateRecord.Save(PathIn(stateDirectory), this, DrainJson.Default.DrainRecord);

    public static void Clear(string stateDirectory)
    {
        var path = PathIn(stateDirectory);
        if (File.Exists(path))
        {
            File.Delete(path);
        }
    }
}
