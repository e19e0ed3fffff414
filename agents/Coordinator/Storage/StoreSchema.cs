namespace Toolforge.Agents.Coordinator.Storage;

/// <summary>The tables both engines hold, with the columns migrate-store copies (in order; ids kept).</summary>
public static class StoreSchema
{
    public static readonly IReadOnlyList<(string Table, string[] Columns)> Tables =
    [
        ("nodes", ["name", "first_seen"]),
        ("agents", ["node", "kind", "version", "last_report", "heartbeat_ms", "state", "sent_at"]),
        ("check_history", ["id", "node", "kind", "name", "state", "message", "at"]),
        ("finding_history", ["id", "node", "kind", "finding", "subject", "message", "first_seen", "resolved_at"]),
        ("events", ["id", "node", "kind", "body", "at"]),
        ("builds", ["id", "requested_at", "body", "command_id", "rank"]),
        ("build_log", ["build", "seq", "line"]),
        ("audit", ["id", "at", "identity", "action", "result", "detail"]),
        ("acks", ["node", "kind", "finding", "subject", "first_seen", "severity", "at", "until", "acked_by", "reason"]),
        ("remediation_pools", ["pool", "last_token", "last_change", "breaker_at", "breaker_reason", "paused_by", "paused_reason", "paused_at"]),
        ("remediation_candidates", ["pool", "node", "at"]),
        ("remediation_holds", ["pool", "node", "kind", "incident", "by_identity", "reason", "at"]),
        ("remediation_leases", ["pool", "node", "incident", "step", "token", "acquired", "renewed", "expires"]),
        ("image_packages", ImageInventorySql.Columns),
    ];
}
