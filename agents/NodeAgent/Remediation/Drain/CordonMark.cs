using System.Text.Json;
using System.Text.Json.Serialization;

namespace Toolforge.Agents.NodeAgent.Remediation.Drain;

/// <summary>
/// What the node-agent writes on the Node when it cordons it (annotation <see cref="Annotation"/>): who cordoned
/// (always <see cref="By"/>), the incident, the step, and whether the Node was already unschedulable before — the only
/// record that decides whether we may uncordon it later.
/// </summary>
public sealed record CordonMark(
    [property: JsonPropertyName("by")] string By,
    [property: JsonPropertyName("incident")] string Incident,
    [property: JsonPropertyName("step")] string Step,
    [property: JsonPropertyName("unschedulableBefore")] bool UnschedulableBefore,
    [property: JsonPropertyName("at")] DateTimeOffset At)
{
    public const string Annotation = "remediation.toolforge.org/node-agent";
    public const string Us = "toolforge-node-agent";

    public string ToJson() => JsonSerializer.Serialize(this, DrainJson.Default.CordonMark);

    /// <summary>Our mark from a Node's annotations; null when there is none, it is not ours or it cannot be read (then it is not ours to act on).</summary>
    public static CordonMark? Read(IReadOnlyDictionary<string, string>? annotations)
    {
        if (annotations is null || !annotations.TryGetValue(Annotation, out var v) || v.Length > 4096)
        {
            return null;
        }

        try
        {
            return JsonSerializer.Deserialize(v, DrainJson.Default.CordonMark) is { By: Us, Incident.Length: > 0 } m ? m : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>
    /// The mark to write when incident <paramref name="incident"/> cordons a Node now <paramref name="unschedulable"/>:
    /// a mark of ours already there (an earlier incident that did not finish) keeps its UnschedulableBefore, since the
    /// Node is unschedulable now because of us, not of an admin.
    /// </summary>
    /// <remarks>
    /// The prior state is kept only from our mark of the same incident (resumed after a restart). A mark another
    /// incident left behind (it ended blocked or failed, or its removal met a conflict) says nothing about now: an
    /// admin may have uncordoned and cordoned the node since, and that cordon must never be undone by us. So the
    /// Node's state now is recorded, which errs on leaving a node cordoned.
    /// </remarks>
    public static CordonMark ForCordon(CordonMark? existing, string incident, bool unschedulable, DateTimeOffset now) =>
        existing?.Incident == incident
            ? new(Us, incident, "cordon", existing.UnschedulableBefore, existing.At)
            : new(Us, incident, "cordon", unschedulable, now);
}

/// <summary>What to do to give a Node back (pure: from the Node's state and our mark).</summary>
public enum UncordonDecision
{
    /// <summary>We cordoned it, it was schedulable before and it is still cordoned: uncordon and remove our mark.</summary>
    Uncordon,

    /// <summary>It was already unschedulable before we came: leave it cordoned, remove our mark.</summary>
    LeaveCordoned,

    /// <summary>Someone uncordoned it meanwhile (an admin): nothing to undo, remove our mark.</summary>
    AlreadyUncordoned,

    /// <summary>No mark of ours for this incident: not ours to touch.</summary>
    NotOurs,
}

public static class Uncordon
{
    public static UncordonDecision Decide(CordonMark? mark, string incident, bool unschedulable) =>
        mark is null || mark.Incident != incident ? UncordonDecision.NotOurs
        : !unschedulable ? UncordonDecision.AlreadyUncordoned
        : mark.UnschedulableBefore ? UncordonDecision.LeaveCordoned
        : UncordonDecision.Uncordon;
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(CordonMark))]
[JsonSerializable(typeof(DrainRecord))]
internal sealed partial class DrainJson : JsonSerializerContext;
