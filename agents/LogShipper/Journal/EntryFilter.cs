using System.Globalization;
using Toolforge.Agents.Common.Journal;
using Toolforge.Agents.Common.Syslog;

namespace Toolforge.Agents.LogShipper.Journal;

/// <summary>The configured filters: units, identifiers, maximum priority, kernel messages on/off.</summary>
public sealed class EntryFilter(ShipperOptions o)
{
    private readonly HashSet<string> _units = o.Units.ToHashSet(StringComparer.Ordinal);
    private readonly HashSet<string> _identifiers = o.Identifiers.ToHashSet(StringComparer.Ordinal);

    public bool Accepts(JournalRecord r)
    {
        if (r.Severity > o.MaxPriority)
        {
            return false;
        }

        if (r.Transport == "kernel")
        {
            return o.Kernel; // the unit and identifier filters are for services; kernel messages have their own switch
        }

        if (_units.Count == 0 && _identifiers.Count == 0)
        {
            return true;
        }

        return (r.Unit is not null && _units.Contains(r.Unit)) || (r.Identifier is not null && _identifiers.Contains(r.Identifier));
    }
}
