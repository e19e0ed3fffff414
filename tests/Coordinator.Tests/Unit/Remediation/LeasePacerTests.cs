using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.Coordinator.Remediation;
using Toolforge.Agents.Coordinator.Storage;

namespace Toolforge.Agents.Coordinator.Tests.Unit.Remediation;

/// <summary>Every pacing rule of a pool, decided on stored rows at a given instant (no store, no clock).</summary>
public sealed class LeasePacerTests
{
    private static readonly DateTimeOffset T0 = new(2026, 12, 7, 10, 0, 0, TimeSpan.Zero); // a Monday

    private static readonly RemediationPoolOptions Pool = new() { Nodes = ["w-*"], MaxConcurrent = 1, MinGap = TimeSpan.FromMinutes(10), LeaseTtl = TimeSpan.FromMinutes(15) };

    private static RemediationPoolRow Empty => new("nfs", 0, 0, []);

    private static long Ms(DateTimeOffset t) => t.ToUnixTimeMilliseconds();

    /// <summary>Applies a decision's write to the row, as the store does.</summary>
    private static RemediationPoolRow Apply(RemediationPoolRow row, RemediationPoolWrite? w)
    {
        if (w is null)
        {
            return row;
        }

        var leases = row.Leases.Where(l => !w.DeleteNodes.Contains(l.Node) && l.Node != w.Upsert?.Node).ToList();
        if (w.Upsert is { } u)
        {
            leases.Add(u);
        }

        return w.After with { Leases = leases };
    }

    private static (LeaseAnswer Answer, RemediationPoolRow Row) Ask(RemediationPoolRow row, LeaseAsk ask, DateTimeOffset at, RemediationPoolOptions? pool = null, params string[] windows)
    {
        var (answer, write) = LeasePacer.Decide(pool ?? Pool, windows.Select(w => MaintenanceWindow.Parse(w, out _)!).ToList(), row, ask, at, knownNodes: 10);
        return (answer, Apply(row, write));
    }

    [Fact]
    public void A_first_take_is_granted_with_token_one_for_the_lease_ttl_and_a_second_node_waits_for_the_pools_one_place()
    {
        var (a, row) = Ask(Empty, new("w-1", "i1", "cordon", 0, false), T0);
        Assert.Equal((true, 1L, TimeSpan.FromMinutes(15)), (a.Granted, a.Token, a.ValidFor));
        Assert.Equal((1L, Ms(T0)), (row.LastToken, row.LastChangeMs));

        var (b, after) = Ask(row, new("w-2", "i9", "cordon", 0, false), T0.AddMinutes(20).AddMinutes(-6)); // lease alive, gap passed
        Assert.False(b.Granted);
        Assert.False(b.Lost);
        Assert.Contains("1 of 1 node(s) of the pool in remediation: w-1 (cordon since 2026-12-07 10:00:00Z)", b.Refusal, StringComparison.Ordinal);
        Assert.Equal(TimeSpan.FromMinutes(1), b.RetryAfter); // when w-1's lease would expire
        Assert.Equal((row.LastToken, row.LastChangeMs), (after.LastToken, after.LastChangeMs)); // no lease, no token
        Assert.Equal(row.Leases, after.Leases);
        Assert.Equal(["w-1", "w-2"], after.Candidates.Select(c => c.Node)); // but w-2 is a candidate now (the storm breaker counts it)
    }

    [Fact]
    public void The_gap_counts_from_the_last_lease_taken_or_ended_and_exactly_at_its_end_a_take_is_granted()
    {
        var (_, row) = Ask(Empty, new("w-1", "i1", "cordon", 0, false), T0);
        var (released, row2) = Ask(row, new("w-1", "i1", "uncordon", 1, true), T0.AddMinutes(5));
        Assert.Equal((false, false, string.Empty), (released.Granted, released.Lost, released.Refusal));
        Assert.Empty(row2.Leases);
        Assert.Equal(Ms(T0.AddMinutes(5)), row2.LastChangeMs);

        var (early, _) = Ask(row2, new("w-2", "i2", "cordon", 0, false), T0.AddMinutes(15).AddMilliseconds(-1));
        Assert.False(early.Granted);
        Assert.Contains("too soon", early.Refusal, StringComparison.Ordinal);
        Assert.Equal(TimeSpan.FromMilliseconds(1), early.RetryAfter);

        var (onTime, row3) = Ask(row2, new("w-2", "i2", "cordon", 0, false), T0.AddMinutes(15));
        Assert.Equal((true, 2L), (onTime.Granted, onTime.Token)); // the token grows across leases
        Assert.Equal("w-2", Assert.Single(row3.Leases).Node);
    }

    [Fact]
    public void An_expired_lease_frees_its_place_at_its_expiry_and_its_holder_has_lost_it_for_good()
    {
        var (_, row) = Ask(Empty, new("w-1", "i1", "cordon", 0, false), T0);
        var expiry = T0.AddMinutes(15);

        // Exactly at the expiry the lease is gone; the gap counts from the expiry.
        var (tooSoon, _) = Ask(row, new("w-2", "i2", "cordon", 0, false), expiry);
        Assert.Contains("too soon: the pool's last lease was taken or ended 2026-12-07 10:15:00Z", tooSoon.Refusal, StringComparison.Ordinal);
        var (taken, row2) = Ask(row, new("w-2", "i2", "cordon", 0, false), expiry.AddMinutes(10));
        Assert.Equal((true, 2L), (taken.Granted, taken.Token));
        Assert.Equal(["w-2"], row2.Leases.Select(l => l.Node));

        // The stale holder wakes up and renews: refused as lost, nothing written for it.
        var (stale, row3) = Ask(row2, new("w-1", "i1", "reboot", 1, false), expiry.AddMinutes(11));
        Assert.Equal((false, true), (stale.Granted, stale.Lost));
        Assert.Contains("token 1 is no longer held", stale.Refusal, StringComparison.Ordinal);
        Assert.Equal(row2, row3);
    }

    [Fact]
    public void A_renewal_moves_the_expiry_and_the_step_keeps_the_token_and_is_allowed_outside_a_window()
    {
        var (_, row) = Ask(Empty, new("w-1", "i1", "cordon", 0, false), T0, null, "Mon 09:00-11:00");
        var (renewed, row2) = Ask(row, new("w-1", "i1", "reboot", 1, false), T0.AddMinutes(14), null, "Mon 09:00-11:00");
        Assert.Equal((true, 1L), (renewed.Granted, renewed.Token));
        var lease = Assert.Single(row2.Leases);
        Assert.Equal(("reboot", Ms(T0.AddMinutes(29)), Ms(T0)), (lease.Step, lease.ExpiresMs, lease.AcquiredMs));
        Assert.Equal(Ms(T0), row2.LastChangeMs); // a renewal is no change of the pool's occupancy

        var (outside, _) = Ask(row2, new("w-1", "i1", "uncordon", 1, false), T0.AddMinutes(28), null, "Mon 09:00-10:05");
        Assert.True(outside.Granted);
    }

    [Fact]
    public void A_renewal_with_another_incident_or_token_is_lost_and_a_take_asked_again_for_the_same_incident_is_the_same_lease()
    {
        var (_, row) = Ask(Empty, new("w-1", "i1", "cordon", 0, false), T0);
        Assert.True(Ask(row, new("w-1", "i2", "cordon", 1, false), T0.AddMinutes(1)).Answer.Lost);
        Assert.True(Ask(row, new("w-1", "i1", "cordon", 7, false), T0.AddMinutes(1)).Answer.Lost);

        var (again, row2) = Ask(row, new("w-1", "i1", "cordon", 0, false), T0.AddMinutes(1)); // the first answer was lost
        Assert.Equal((true, 1L), (again.Granted, again.Token));
        Assert.Equal(1L, row2.LastToken);
    }

    [Fact]
    public void A_node_whose_earlier_incident_kept_its_lease_is_judged_anew_for_the_next_incident_and_its_old_lease_ends()
    {
        var (_, row) = Ask(Empty, new("w-1", "old", "cordon", 0, false), T0);
        var (soon, row2) = Ask(row, new("w-1", "new", "cordon", 0, false), T0.AddMinutes(2)); // the gap holds it too
        Assert.False(soon.Granted);
        Assert.Contains("too soon", soon.Refusal, StringComparison.Ordinal);
        Assert.Empty(row2.Leases); // the old incident's lease ended

        var (next, row3) = Ask(row2, new("w-1", "new", "cordon", 0, false), T0.AddMinutes(10));
        Assert.Equal((true, 2L), (next.Granted, next.Token));
        Assert.Equal(("new", 2L), (Assert.Single(row3.Leases).Incident, row3.Leases[0].Token));

        // A lease held is no way past a pause or a window (the review's case: held, paused, outside every window).
        var paused = row with { PausedBy = "admin", PausedReason = "r", PausedAtMs = T0.ToUnixTimeMilliseconds() };
        Assert.Contains("paused", Ask(paused, new("w-1", "new", "cordon", 0, false), T0.AddMinutes(11)).Answer.Refusal, StringComparison.Ordinal);
        Assert.Contains("outside the pool's maintenance windows", Ask(row, new("w-1", "new", "cordon", 0, false), T0.AddMinutes(11), null, "Sat 00:00-01:00").Answer.Refusal, StringComparison.Ordinal);
    }

    [Fact]
    public void With_two_places_two_nodes_hold_leases_and_a_third_waits_and_a_release_of_a_lease_not_held_changes_nothing()
    {
        var two = new RemediationPoolOptions { Nodes = ["w-*"], MaxConcurrent = 2, MinGap = TimeSpan.Zero, LeaseTtl = TimeSpan.FromMinutes(15) };
        var (_, row) = Ask(Empty, new("w-1", "a", "cordon", 0, false), T0, two);
        var (second, row2) = Ask(row, new("w-2", "b", "cordon", 0, false), T0, two);
        Assert.Equal((true, 2L), (second.Granted, second.Token));
        var (third, _) = Ask(row2, new("w-3", "c", "cordon", 0, false), T0.AddSeconds(1), two);
        Assert.Contains("2 of 2 node(s)", third.Refusal, StringComparison.Ordinal);

        var (wrong, row3) = Ask(row2, new("w-1", "a", "uncordon", 2, true), T0.AddSeconds(2), two);
        Assert.True(wrong.Lost);
        Assert.Equal(row2, row3);
    }

    [Fact]
    public void Outside_every_window_a_take_is_refused_until_the_next_one_opens()
    {
        var (a, _) = Ask(Empty, new("w-1", "i1", "cordon", 0, false), T0, null, "Tue-Fri 08:00-16:00", "daily 22:00-02:00");
        Assert.False(a.Granted);
        Assert.Contains("the next opens 2026-12-07 22:00:00Z", a.Refusal, StringComparison.Ordinal);
        Assert.Equal(TimeSpan.FromHours(12), a.RetryAfter);
        Assert.True(Ask(Empty, new("w-1", "i1", "cordon", 0, false), T0.AddHours(15).AddMinutes(59), null, "daily 22:00-02:00").Answer.Granted); // Tue 01:59
    }
}

/// <summary>The storm breaker, pauses, holds and cancels: what admins and storms decide, on stored rows.</summary>
public sealed class RemediationGuardTests
{
    private static readonly DateTimeOffset T0 = new(2026, 12, 7, 10, 0, 0, TimeSpan.Zero);

    private static readonly RemediationPoolOptions Pool = new() { Nodes = ["w-*"], MaxConcurrent = 1, MinGap = TimeSpan.Zero, LeaseTtl = TimeSpan.FromMinutes(15) };

    private static RemediationPoolRow Apply(RemediationPoolRow row, RemediationPoolWrite? w) =>
        w is null ? row : w.After with { Leases = [.. row.Leases.Where(l => !w.DeleteNodes.Contains(l.Node) && l.Node != w.Upsert?.Node), .. w.Upsert is { } u ? [u] : Array.Empty<RemediationLeaseRow>()] };

    private static (LeaseAnswer Answer, RemediationPoolRow Row) Ask(RemediationPoolRow row, string node, string incident, DateTimeOffset at, long token = 0, int known = 10, RemediationPoolOptions? pool = null)
    {
        var (a, w) = LeasePacer.Decide(pool ?? Pool, [], row, new LeaseAsk(node, incident, "cordon", token, false), at, known);
        return (a, Apply(row, w));
    }

    private static RemediationPoolRow Control(RemediationPoolRow row, RemediationAction action, string? node, DateTimeOffset at)
    {
        var (refusal, w) = RemediationControl.Apply(row, action, node, "admin1.example", "because", at);
        Assert.Null(refusal);
        return Apply(row, w);
    }

    [Fact]
    public void In_a_pool_of_one_or_three_known_nodes_the_first_incident_does_not_trip_the_shipped_30_percent_but_a_second_of_three_does()
    {
        var (one, oneRow) = Ask(new RemediationPoolRow("nfs", 0, 0, []), "w-1", "i1", T0, known: 1);
        Assert.True(one.Granted, one.Refusal);
        Assert.Equal(0, oneRow.BreakerAtMs);

        var row = Ask(new RemediationPoolRow("nfs", 0, 0, []), "w-1", "i1", T0, known: 3).Row;
        Assert.Equal(0, row.BreakerAtMs);
        var (second, tripped) = Ask(row, "w-2", "i2", T0.AddMinutes(1), known: 3); // 2 of 3 = 67 % > 30 %
        Assert.Contains("storm breaker tripped now", second.Refusal, StringComparison.Ordinal);
        Assert.True(tripped.BreakerAtMs > 0);
    }

    [Fact]
    public void Four_of_ten_nodes_asking_within_the_window_trip_the_breaker_and_nothing_is_taken_until_it_is_reset()
    {
        var row = new RemediationPoolRow("nfs", 0, 0, []);
        for (var i = 1; i <= 3; i++)
        {
            row = Ask(row, $"w-{i}", $"i{i}", T0.AddMinutes(i)).Row; // w-1 granted, w-2 and w-3 wait: 3 candidates, not more than 3 nor 30 %
        }

        Assert.Equal(0, row.BreakerAtMs);
        var (fourth, tripped) = Ask(row, "w-4", "i4", T0.AddMinutes(4));
        Assert.False(fourth.Granted);
        Assert.Contains("the pool's storm breaker tripped now (4 node(s) of the 10 known asked within 30 min (more than 3, or 30 %): w-1, w-2, w-3, w-4)", fourth.Refusal, StringComparison.Ordinal);
        Assert.Equal(T0.AddMinutes(4).ToUnixTimeMilliseconds(), tripped.BreakerAtMs);

        // w-1's lease under way is renewed; w-1 giving it back does not let the next one in.
        Assert.True(Ask(tripped, "w-1", "i1", T0.AddMinutes(5), token: 1).Answer.Granted);
        var afterEnd = Apply(tripped, LeasePacer.Decide(Pool, [], tripped, new LeaseAsk("w-1", "i1", "uncordon", 1, true), T0.AddMinutes(6), 10).Write);
        Assert.Contains("reset-breaker nfs", Ask(afterEnd, "w-2", "i2", T0.AddHours(3)).Answer.Refusal, StringComparison.Ordinal); // long after the window: still tripped

        var reset = Control(afterEnd, RemediationAction.ResetBreaker, null, T0.AddHours(3));
        Assert.Equal((0L, 0), (reset.BreakerAtMs, reset.Candidates.Count));
        Assert.True(Ask(reset, "w-2", "i2", T0.AddHours(3)).Answer.Granted);
    }

    [Fact]
    public void The_share_of_a_small_pool_trips_the_breaker_and_candidates_older_than_the_window_are_forgotten()
    {
        var row = new RemediationPoolRow("nfs", 0, 0, []);
        row = Ask(row, "w-1", "a", T0, known: 4).Row;
        var (second, tripped) = Ask(row, "w-2", "b", T0.AddMinutes(1), known: 4); // 2 of 4 = 50 % > 30 %
        Assert.Contains("storm breaker tripped now (2 node(s) of the 4 known", second.Refusal, StringComparison.Ordinal);
        Assert.True(tripped.BreakerAtMs > 0);

        var spaced = Ask(row, "w-2", "b", T0.AddMinutes(31), known: 4); // w-1 asked 31 min ago: forgotten
        Assert.Equal(0, spaced.Row.BreakerAtMs);
        Assert.Equal(["w-2"], spaced.Row.Candidates.Select(c => c.Node));
    }

    [Fact]
    public void A_paused_pool_or_node_takes_no_new_lease_but_one_under_way_is_renewed_and_resume_lifts_it()
    {
        var (_, row) = Ask(new RemediationPoolRow("nfs", 0, 0, []), "w-1", "a", T0);
        var paused = Control(row, RemediationAction.Pause, null, T0.AddMinutes(1));
        Assert.True(Ask(paused, "w-1", "a", T0.AddMinutes(2), token: 1).Answer.Granted);
        var released = Apply(paused, LeasePacer.Decide(Pool, [], paused, new LeaseAsk("w-1", "a", "uncordon", 1, true), T0.AddMinutes(3), 10).Write);
        Assert.Contains("the pool is paused by admin1.example since 2026-12-07 10:01:00Z: because", Ask(released, "w-2", "b", T0.AddMinutes(4)).Answer.Refusal, StringComparison.Ordinal);

        var resumed = Control(released, RemediationAction.Resume, null, T0.AddMinutes(5));
        var nodePaused = Control(resumed, RemediationAction.Pause, "w-2", T0.AddMinutes(5));
        Assert.Contains("w-2 is paused by admin1.example", Ask(nodePaused, "w-2", "b", T0.AddMinutes(6)).Answer.Refusal, StringComparison.Ordinal);
        Assert.True(Ask(nodePaused, "w-3", "c", T0.AddMinutes(6)).Answer.Granted);
        Assert.True(Ask(Control(nodePaused, RemediationAction.Resume, "w-2", T0.AddMinutes(6)), "w-2", "b", T0.AddMinutes(6)).Answer.Granted);
        Assert.Equal("pool nfs is not paused", RemediationControl.Apply(resumed, RemediationAction.Resume, null, "a", "r", T0).Refusal);
        Assert.Equal("w-9 is not paused", RemediationControl.Apply(resumed, RemediationAction.Resume, "w-9", "a", "r", T0).Refusal);
    }

    [Fact]
    public void A_cancelled_incident_is_refused_for_good_as_ended_and_its_place_frees_only_when_its_lease_expires()
    {
        var (_, row) = Ask(new RemediationPoolRow("nfs", 0, 0, []), "w-1", "a", T0);
        var cancelled = Control(row, RemediationAction.Cancel, "w-1", T0.AddMinutes(1));
        Assert.Single(cancelled.Leases); // the holder may be acting, out of earshot: its place is kept until the lease expires
        Assert.Contains("1 of 1", Ask(cancelled, "w-2", "c", T0.AddMinutes(14)).Answer.Refusal, StringComparison.Ordinal);

        var renew = Ask(cancelled, "w-1", "a", T0.AddMinutes(2), token: 1).Answer;
        Assert.Equal((false, true, true), (renew.Granted, renew.Lost, renew.Ended));
        Assert.Contains("incident a was cancelled by admin1.example at 2026-12-07 10:01:00Z: because", renew.Refusal, StringComparison.Ordinal);
        Assert.True(Ask(cancelled, "w-1", "a", T0.AddMinutes(2)).Answer.Ended); // taken afresh: no better
        Assert.True(Ask(cancelled, "w-1", "b", T0.AddMinutes(3)).Answer.Granted); // a new incident of the node is not held (its old lease ends)
        Assert.True(Ask(cancelled, "w-2", "c", T0.AddMinutes(15)).Answer.Granted); // the lease expired: the place is free
        Assert.Equal("w-2 holds no lease of pool nfs: no incident under way to cancel", RemediationControl.Apply(cancelled, RemediationAction.Cancel, "w-2", "a", "r", T0).Refusal);
        Assert.Equal("pool nfs's storm breaker has not tripped", RemediationControl.Apply(cancelled, RemediationAction.ResetBreaker, null, "a", "r", T0).Refusal);
        Assert.True(Ask(cancelled, "w-1", "a", T0.AddDays(30)).Answer.Ended); // still ended a month later
        Assert.Empty(Apply(cancelled, LeasePacer.Decide(Pool, [], cancelled, new LeaseAsk("w-3", "d", "cordon", 0, false), T0.AddDays(91), 10).Write).Holds); // forgotten after 90 days
    }
}
