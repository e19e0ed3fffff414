namespace Toolforge.Agents.TestSupport;

/// <summary>
/// A section bound by one options type (or several, each taking its own keys of it: the coordinator's features in
/// "Coordinator") whose feature subsections are bound by their own (Builder and Builder:Git): what
/// <see cref="BoundConfig.CompareLists"/> walks for it.
/// </summary>
public sealed record SectionWithParts(IReadOnlyList<object> Options, IReadOnlyDictionary<string, object> Parts)
{
    public SectionWithParts(object options, IReadOnlyDictionary<string, object> parts)
        : this([options], parts)
    {
    }
}
