using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.Coordinator.Reports;

/// <summary>
/// The report-ingest keys of the "Coordinator" section: how many reports may wait for the database at once, and the
/// pace a fleet's returning agents are spread over after a restart.
/// </summary>
public sealed class IngestOptions : IValidatedOptions
{
    public const string Section = CoordinatorOptions.Section;

    /// <summary>
    /// Reports received and not yet stored, at most. One more is refused with RESOURCE_EXHAUSTED and a retry hint
    /// (the grpc-retry-pushback-ms trailer) instead of queueing without bound; nothing of it is stored, the agent sends
    /// its whole state again after the hint.
    /// </summary>
    public int ReportsInFlight { get; set; } = 4096;

    /// <summary>
    /// Nodes a second the coordinator spreads returning agents over: every answer tells agents a reconnect window of
    /// (known nodes / ReconnectRate) seconds, at least 1 s and at most the heartbeat; after a broken connection an agent
    /// sends its first report at a uniformly random moment of that window (full jitter), so a restart is no stampede.
    /// A node's agents (node-agent and log-shipper; the builder too on its host) each report: reports arrive at about
    /// two to three times this rate.
    /// </summary>
    public double ReconnectRate { get; set; } = 200;

    public IEnumerable<string> Validate(string section)
    {
        var problems = new List<string>();
        problems.AddRange(Check.Range(section, nameof(ReportsInFlight), ReportsInFlight, 1, 1_000_000));
        if (!(ReconnectRate >= 1 && ReconnectRate <= 1_000_000))
        {
            problems.Add($"{Check.Key(section, nameof(ReconnectRate))}: must be at least 1 and at most 1000000 nodes a second (got {ReconnectRate.ToString(System.Globalization.CultureInfo.InvariantCulture)})");
        }

        return problems;
    }
}
