namespace Toolforge.Agents.TestSupport;

/// <summary>
/// A section bound by one options type whose feature subsections are bound by their own (Builder and Builder:Git):
/// what <see cref="BoundConfig.CompareLists"/> walks for it.
/// </summary>
public sealed record SectionWithParts(object Options, IReadOnlyDictionary<string, object> Parts);
