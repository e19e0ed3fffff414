using System.Text.Json;
using System.Text.Json.Serialization;
using Toolforge.Agents.Common.Files;

namespace Toolforge.Agents.NodeAgent.Remediation.Ladder;

/// <summary>The ladder's rungs, in order.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<Rung>))]
public enum Rung
{
    /// <summary>Restart the unit in trouble over D-Bus and wait for it to be healthy.</summary>
    Restart,

    /// <summary>Cordon (with our mark) and drain through the Eviction API (the Drainer).</summary>
    Drain,

    /// <summary>Reboot through logind, once.</summary>
    Reboot,

    /// <summary>The admin's hard-reset command, once.</summary>
    HardReset,

    /// <summary>Back from the reboot: wait for Ready and green, then uncordon.</summary>
    Recover,
}

/// <summary>
/// One incident as this host keeps it (StateDirectory/node-agent.remediation-incident, written with DurableFile before
/// each action): what triggered it, the rung and since when, the boot it started in, and whether the reboot and the
/// hard reset were already asked for — each at most once per incident, whatever restarts.
/// </summary>
public sealed record Incident(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("trigger")] string Trigger,
    [property: JsonPropertyName("unit")] string? Unit,
    [property: JsonPropertyName("rung")] Rung Rung,
    [property: JsonPropertyName("started")] DateTimeOffset Started,
    [property: JsonPropertyName("rungStarted")] DateTimeOffset RungStarted,
    [property: JsonPropertyName("bootId")] string BootId)
{
    /// <summary>The rung's action was last tried at (null: not yet in this rung).</summary>
    [JsonPropertyName("lastAttempt")]
    public DateTimeOffset? LastAttempt { get; init; }

    /// <summary>The rung's action was done (the unit restarted).</summary>
    [JsonPropertyName("acted")]
    public bool Acted { get; init; }

    /// <summary>Our cordon of this incident was seen on the Node (from then, the Node uncordoned or unmarked by someone else ends the incident).</summary>
    [JsonPropertyName("cordoned")]
    public bool Cordoned { get; init; }

    [JsonPropertyName("rebootAsked")]
    public bool RebootAsked { get; init; }

    [JsonPropertyName("hardResetRun")]
    public bool HardResetRun { get; init; }

    /// <summary>Ready=True and green without a break since (Recover).</summary>
    [JsonPropertyName("healthySince")]
    public DateTimeOffset? HealthySince { get; init; }

    /// <summary>Why the ladder waits for an admin (said once), or null.</summary>
    [JsonPropertyName("stalled")]
    public string? Stalled { get; init; }

    /// <summary>When it ended (the record stays, so the next incident waits the ladder's Cooldown), and how.</summary>
    [JsonPropertyName("ended")]
    public DateTimeOffset? Ended { get; init; }

    [JsonPropertyName("end")]
    public string? End { get; init; }

    /// <summary>Why a record read from disk cannot be trusted (a field missing or null, a bad id), or null.</summary>
    public string? Invalid()
    {
        if (string.IsNullOrEmpty(Id) || Id.Length > 64 || !Id.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or ':' or '-'))
        {
            return "its id is missing or not 1-64 of A-Za-z0-9._:-";
        }

        if (string.IsNullOrEmpty(Trigger) || string.IsNullOrEmpty(BootId) || !Enum.IsDefined(Rung))
        {
            return "its trigger, boot id or rung is missing";
        }

        return Started == default || RungStarted == default ? "its start is missing" : null;
    }

    public static string PathIn(string stateDirectory) => Path.Combine(stateDirectory, "node-agent.remediation-incident");

    /// <summary>The saved incident; null with <paramref name="problem"/> saying why when the file exists but cannot be read.</summary>
    public static Incident? Load(string stateDirectory, out string? problem) => Load(stateDirectory, out problem, out _);

    /// <summary>
    /// As <see cref="Load(string, out string?)"/>; <paramref name="olderForm"/>: the record keeps PID 1's start inside
    /// <c>bootId</c> (the form of the version before <see cref="Save"/> split it), to be written again in the split form.
    /// </summary>
    public static Incident? Load(string stateDirectory, out string? problem, out bool olderForm)
    {
        var r = StateRecord.Load(PathIn(stateDirectory), "the remediation incident", 8192, LadderJson.Default.Incident, out problem);
        olderForm = r?.BootId?.Contains('/', StringComparison.Ordinal) == true;
        if (r is null || string.IsNullOrEmpty(r.BootId))
        {
            return r;
        }

        // Both forms at once (no writer makes it): bootId's own init wins, initStart is not added to it a second time.
        return r with { BootId = olderForm ? r.BootId : BootIdentity.Of(r.BootId, r.InitStart), InitStart = null };
    }

    /// <summary>
    /// Written with the kernel's boot id alone in <c>bootId</c> and PID 1's start apart in <c>initStart</c>: an older
    /// agent (a downgrade mid-incident) reads <c>bootId</c> as it always did and so takes the same kernel boot for the
    /// same boot, never its own restart for the reboot it asked.
    /// </summary>
    public void Save(string stateDirectory)
    {
        var (kernel, init) = BootIdentity.Split(BootId);
        StateRecord.Save(PathIn(stateDirectory), this with { BootId = kernel, InitStart = init }, LadderJson.Default.Incident);
    }

    /// <summary>On disk only: PID 1's start of the boot (see <see cref="Save"/>); in memory it is part of <see cref="BootId"/>.</summary>
    [JsonPropertyName("initStart")]
    public string? InitStart { get; init; }
}

[JsonSerializable(typeof(Incident))]
[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
internal sealed partial class LadderJson : JsonSerializerContext;
