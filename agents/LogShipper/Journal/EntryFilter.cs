using System.Text;

namespace Toolforge.Agents.LogShipper.Journal;

/// <summary>The configured filters: units, identifiers, maximum priority, kernel messages on/off.</summary>
public sealed class EntryFilter(JournalOptions o)
{
    private readonly HashSet<string>.AlternateLookup<ReadOnlySpan<char>> _units = o.Units.ToHashSet(StringComparer.Ordinal).GetAlternateLookup<ReadOnlySpan<char>>();
    private readonly HashSet<string>.AlternateLookup<ReadOnlySpan<char>> _identifiers = o.Identifiers.ToHashSet(StringComparer.Ordinal).GetAlternateLookup<ReadOnlySpan<char>>();

    public bool Accepts(JournalEntry e)
    {
        if (e.Severity > o.MaxPriority)
        {
            return false;
        }

        if (e[JournalField.Transport].SequenceEqual("kernel"u8))
        {
            return o.Kernel; // the unit and identifier filters are for services; kernel messages have their own switch
        }

        if (_units.Set.Count == 0 && _identifiers.Set.Count == 0)
        {
            return true;
        }

        return (e.Has(JournalField.Unit) && Contains(_units, e[JournalField.Unit]))
            || (e.Has(JournalField.Identifier) && Contains(_identifiers, e[JournalField.Identifier]));
    }

    private static bool Contains(HashSet<string>.AlternateLookup<ReadOnlySpan<char>> set, ReadOnlySpan<byte> utf8)
    {
        Span<char> scratch = stackalloc char[Utf16.StackLimit];
        return set.Set.Count > 0 && set.Contains(Utf16.Decode(utf8, scratch));
    }
}

/// <summary>UTF-8 bytes as text for a lookup, decoded into the caller's scratch when short (as Encoding.UTF8 decodes: invalid bytes become U+FFFD).</summary>
internal static class Utf16
{
    public const int StackLimit = 256;

    public static ReadOnlySpan<char> Decode(ReadOnlySpan<byte> utf8, Span<char> scratch) =>
        utf8.Length > scratch.Length ? Encoding.UTF8.GetString(utf8) : scratch[..Encoding.UTF8.GetChars(utf8, scratch)]; // never more chars than bytes
}
