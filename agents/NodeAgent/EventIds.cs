namespace Toolforge.Agents.NodeAgent;

/// <summary>
/// Every log event id of the node-agent (its range is 3000–3999, README "Architecture"), grouped by feature, one
/// hundred per feature: a new feature takes the next free hundred, a new line the next free id of its group. An admin
/// greps the journal by these numbers, so an id never changes meaning (tests/Packaging.Tests/EventIdsTests.cs fails on
/// one used twice).
/// </summary>
internal static class EventIds
{
    // Kubernetes/ClusterView: the cluster view (list + watch, or a snapshot file).
    public const int ClusterListWatchFailed = 3101;
    public const int ClusterRecovered = 3102;
    public const int ClusterSnapshotRead = 3103;
    public const int ClusterSnapshotUnreadable = 3104;
    public const int ClusterKubeconfigUnusable = 3105;
    public const int ClusterKubeconfigUsable = 3106;

    // Journal/: the journal rules.
    public const int JournalReadFailed = 3201;
    public const int JournalCursorUnknown = 3202;
    public const int JournalRuleStateUnreadable = 3203;
    public const int JournalCursorUnreadable = 3204;
    public const int JournalReadingAgain = 3205;

    // Audit/KubeProxy: which mode kube-proxy runs in.
    public const int KubeProxyMode = 3301;

    // Audit/Conntrack: stale conntrack entries.
    public const int ConntrackDeleteFailed = 3401;
    public const int ConntrackListingCut = 3402;

    // Kubernetes/Conditions: the Node's conditions (35xx) and Events (351x).
    public const int ConditionsWriteFailed = 3501;
    public const int ConditionsDeleted = 3502;
    public const int ConditionsOwnedUnreadable = 3503;
    public const int ConditionsWrittenAgain = 3504;
    public const int EventsWriteFailed = 3511;
    public const int EventsSeriesDropped = 3512;
    public const int EventsWrittenAgain = 3513;

    // Remediation/: unit restarts.
    public const int RemediationFailed = 3601;

    // Remediation/Drain: cordon, evictions, verdicts, uncordon.
    public const int DrainStep = 3701;
    public const int DrainApiFailed = 3702;
    public const int DrainRecordFailed = 3703;

    // Remediation/Drain/CoordinatorLeaseGate: the coordinator's per-pool lease.
    public const int LeaseGranted = 3711;
    public const int LeaseLost = 3712;
    public const int LeaseReleased = 3713;
    public const int LeaseReleaseFailed = 3714;
    public const int LeaseFileUnusable = 3715;
    public const int LeaseEnded = 3716;

    // Remediation/Ladder: the incident ladder (restart, drain, reboot, hard reset, recover).
    public const int LadderStep = 3721;
    public const int LadderRecordFailed = 3722;
    public const int LadderResumed = 3723;
    public const int LadderRenewed = 3724;
    public const int LadderNodeUnreadable = 3725;
    public const int LadderTickFailed = 3726;
    public const int LadderMarkFailed = 3727;
    public const int LadderTickFailedUnexpectedly = 3728;
}
