using System.Globalization;
using Toolforge.Agents.Coordinator.Remediation;
using Toolforge.Agents.Coordinator.Storage;
using Toolforge.Agents.NodeAgent.Remediation.Drain;
using Toolforge.Agents.NodeAgent.Remediation.Ladder;
using Xunit.Abstractions;

namespace Toolforge.Agents.NodeAgent.Tests.Remediation;

/// <summary>
/// The acceptance's seeded simulation over the two pure cores — the node-agent's <see cref="IncidentLadder"/> and the
/// coordinator's <see cref="LeasePacer"/> — with a fake clock and no sleeps: 10 nodes in one pool (MaxConcurrent 1,
/// LeaseTtl 15 min, the breaker out of the way), triggers at random, agents killed at random ticks (systemd brings
/// them back within 5-90 s; their incident and lease token survive on disk, the lease's usable time does not), a
/// coordinator instance killed at random (no answer for 10-60 s), 5 % of API writes and reads answered 409 or 503,
/// the two coordinator instances' clocks ±2 s apart and each agent's ±2 s off. Reboots take 1-8 min, and an admin
/// now and then uncordons a node by hand. The harness plays what the service and the CoordinatorLeaseGate do (the
/// record saved before the action; the gate asked before every write; a lease usable without an answer only until
/// its life less 30 s on the agent's own clock); the deciding is the product's own code.
/// Checked at every write of the log: never more than MaxConcurrent nodes cordoned by us (our mark, unschedulable);
/// at most one reboot per incident; at the end, no node left with our mark of an incident that ended.
/// </summary>
public sealed class LadderSimulationTests(ITestOutputHelper output)
{
    private const int Nodes = 10;
    private static readonly TimeSpan Tick = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan Run = TimeSpan.FromHours(4);
    private static readonly DateTimeOffset T0 = new(2026, 12, 6, 0, 0, 0, TimeSpan.Zero);

    private static readonly RemediationPoolOptions Pool = new()
    {
        Nodes = ["w-*"], MaxConcurrent = 1, MinGap = TimeSpan.FromMinutes(1), LeaseTtl = TimeSpan.FromMinutes(15),
        BreakerNodes = 1000, BreakerPercent = 100,
    };

    private sealed class KubeNode
    {
        public bool Unschedulable { get; set; }

        public string? Mark { get; set; }

        public bool MarkSaysUnschedulableBefore { get; set; }

        public bool Ready { get; set; } = true;
    }

    private sealed class Agent(string name)
    {
        public string Name { get; } = name;

        public Incident? Saved { get; set; } // the durable record

        public long Token { get; set; } // the durable lease token (0: none)

        public string TokenIncident { get; set; } = string.Empty;

        public DateTimeOffset UsableUntil { get; set; } = DateTimeOffset.MinValue; // in memory only

        public DateTimeOffset DownUntil { get; set; } = DateTimeOffset.MinValue;

        public string Boot { get; set; } = Guid.NewGuid().ToString();

        public bool Trouble { get; set; }

        public TimeSpan Skew { get; set; }
    }

    private sealed class World(int seed, TimeSpan killedFor)
    {
        public TimeSpan KilledFor { get; } = killedFor;

        public Random Random { get; } = new(seed);

        public DateTimeOffset Now { get; set; } = T0;

        public Dictionary<string, KubeNode> Kube { get; } = [];

        public List<Agent> Agents { get; } = [];

        public RemediationPoolRow Row { get; set; } = new("nfs", 0, 0, []);

        public DateTimeOffset CoordinatorDownUntil { get; set; } = DateTimeOffset.MinValue;

        public TimeSpan[] InstanceSkew { get; } = [TimeSpan.Zero, TimeSpan.Zero];

        public Dictionary<string, int> Reboots { get; } = [];

        public HashSet<string> Ended { get; } = [];

        public int Writes { get; set; }

        public int Violations { get; set; }

        public int MaxCordoned { get; set; }

        public int Incidents { get; set; }

        public int Recovered { get; set; }

        public List<string> Problems { get; } = [];

        public bool Chance(double p) => Random.NextDouble() < p;
    }

    [Fact]
    public void AThousandSeededRuns_NeverMoreThanMaxConcurrentCordonedByUs_AtMostOneRebootPerIncident_NoMarkLeftAfterItsEnd()
    {
        int runs = 1000, violations = 0, maxCordoned = 0, incidents = 0, recovered = 0, reboots = 0, writes = 0;
        var problems = new List<string>();
        var started = System.Diagnostics.Stopwatch.StartNew();
        for (var seed = 1; seed <= runs; seed++)
        {
            var w = Simulate(seed, TimeSpan.FromSeconds(90));
            violations += w.Violations;
            maxCordoned = Math.Max(maxCordoned, w.MaxCordoned);
            incidents += w.Incidents;
            recovered += w.Recovered;
            reboots += w.Reboots.Values.Sum();
            writes += w.Writes;
            problems.AddRange(w.Problems.Take(3).Select(p => $"seed {seed}: {p}"));
        }

        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{runs} seeded runs of {Run.TotalHours} h, {Nodes} nodes, MaxConcurrent {Pool.MaxConcurrent}: {incidents} incidents, {recovered} back in service (uncordoned after Ready and green), {reboots} reboots, {writes} API writes; at most {maxCordoned} node(s) cordoned by us at once; {violations} violation(s); {started.Elapsed.TotalSeconds:0.0} s"));
        foreach (var p in problems.Take(20))
        {
            output.WriteLine(p);
        }

        Assert.True(violations == 0, string.Join("\n", problems.Take(20)));
        Assert.Equal(Pool.MaxConcurrent, maxCordoned);
        Assert.True(recovered > runs, $"only {recovered} incidents came back in service: the simulation does not exercise the ladder");
    }

    /// <summary>
    /// The limit, measured: agents dead for up to 40 min (longer than LeaseTtl, 15 min) with their node cordoned. The
    /// coordinator frees a silent node's place at the lease's expiry (as it must, or a deleted node would hold it for
    /// ever), so another node may then be cordoned while the dead one still is: the figure is printed, and the checker
    /// is shown to see it (this is the negative control of the test above).
    /// </summary>
    [Fact]
    public void AgentsDeadLongerThanTheLease_LetASecondNodeBeCordoned_TheFigure()
    {
        int runs = 200, withViolation = 0, violations = 0;
        for (var seed = 1; seed <= runs; seed++)
        {
            var w = Simulate(seed, TimeSpan.FromMinutes(40));
            violations += w.Violations;
            withViolation += w.Violations > 0 ? 1 : 0;
        }

        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{runs} seeded runs with agents dead up to 40 min (LeaseTtl 15 min): {withViolation} run(s) had two nodes cordoned by us at once ({violations} write(s))"));
        Assert.True(withViolation > 0, "the checker never saw a second cordon even with agents dead past the lease's life");
    }

    private static World Simulate(int seed, TimeSpan killedFor)
    {
        var w = new World(seed, killedFor);
        w.InstanceSkew[0] = TimeSpan.FromMilliseconds(w.Random.Next(-2000, 2001));
        w.InstanceSkew[1] = TimeSpan.FromMilliseconds(w.Random.Next(-2000, 2001));
        for (var i = 0; i < Nodes; i++)
        {
            var name = "w-" + i.ToString(CultureInfo.InvariantCulture);
            w.Kube[name] = new KubeNode();
            w.Agents.Add(new Agent(name) { Skew = TimeSpan.FromMilliseconds(w.Random.Next(-2000, 2001)) });
        }

        var o = new LadderOptions { Enabled = true, Cooldown = TimeSpan.FromMinutes(30) };
        o.Recover.HealthyFor = TimeSpan.FromMinutes(5);
        for (; w.Now < T0 + Run; w.Now += Tick)
        {
            if (w.Chance(0.002))
            {
                w.CoordinatorDownUntil = w.Now + TimeSpan.FromSeconds(w.Random.Next(10, 61));
            }

            foreach (var a in w.Agents.OrderBy(_ => w.Random.Next()))
            {
                Step(w, a, o);
            }
        }

        // No node left with our mark of an incident that ended.
        foreach (var (name, node) in w.Kube)
        {
            if (node.Mark is { } mark && w.Ended.Contains(mark))
            {
                w.Violations++;
                w.Problems.Add($"{name} keeps our mark of ended incident {mark} (unschedulable {node.Unschedulable})");
            }
        }

        return w;
    }

    private static void Step(World w, Agent a, LadderOptions o)
    {
        var node = w.Kube[a.Name];
        if (w.Now < a.DownUntil)
        {
            return;
        }

        node.Ready = true; // back from a reboot or never gone: the kubelet posts Ready again
        if (!a.Trouble && w.Chance(0.0004))
        {
            a.Trouble = true; // processes stuck on the NFS mount: only a reboot cures it
        }

        if (w.Chance(0.0005) && node.Unschedulable && node.Mark is not null)
        {
            node.Unschedulable = false; // an admin's kubectl uncordon
        }

        var now = w.Now + a.Skew;
        var i = a.Saved;
        if (i is null || i.Ended is not null)
        {
            if (!a.Trouble || !IncidentLadder.MayOpen(i, now, o))
            {
                return;
            }

            i = IncidentLadder.Open($"{a.Name}-{w.Incidents++}", new TriggerHit("stuck-processes", null, Rung.Drain, "stuck"), now, a.Boot);
            a.Saved = i;
        }

        bool? ours = w.Chance(0.05) ? null : node.Mark == i.Id && node.Unschedulable;
        var step = IncidentLadder.Decide(i, new LadderView(now, a.Boot, !a.Trouble, ours is not null && node.Ready, ours), o);
        var next = step.Next;
        switch (step.Action)
        {
            case LadderAction.Drain:
                a.Saved = next;
                DrainEnd end;
                if (!Gate(w, a, next.Id, "cordon"))
                {
                    end = DrainEnd.Refused;
                }
                else if (node.Mark != next.Id || !node.Unschedulable)
                {
                    if (node.Mark == next.Id && !node.Unschedulable)
                    {
                        end = DrainEnd.Cancelled; // resumed past its cordon: uncordoned meanwhile
                        node.Mark = null;
                    }
                    else if (Write(w, a.Name, "cordon"))
                    {
                        node.MarkSaysUnschedulableBefore = node.Unschedulable && node.Mark is null;
                        node.Unschedulable = true;
                        node.Mark = next.Id;
                        Check(w);
                        end = w.Chance(0.2) ? DrainEnd.Blocked : DrainEnd.Drained;
                    }
                    else
                    {
                        end = DrainEnd.Failed;
                    }
                }
                else
                {
                    end = Gate(w, a, next.Id, "evict") ? (w.Chance(0.3) ? DrainEnd.Blocked : DrainEnd.Drained) : DrainEnd.Refused;
                }

                var after = IncidentLadder.AfterDrain(next, end, "sim", now, o);
                if (after.Action == LadderAction.End)
                {
                    EndIncident(w, a, after.Next);
                }
                else
                {
                    a.Saved = after.Next;
                }

                break;
            case LadderAction.Reboot:
                if (!Gate(w, a, next.Id, "reboot"))
                {
                    break;
                }

                a.Saved = next; // saved before logind is asked
                if (w.Chance(0.02))
                {
                    a.DownUntil = w.Now + TimeSpan.FromSeconds(w.Random.Next(5, (int)w.KilledFor.TotalSeconds + 1)); // killed before it asked: never asked again
                    break;
                }

                w.Reboots[next.Id] = w.Reboots.GetValueOrDefault(next.Id) + 1;
                if (w.Reboots[next.Id] > 1)
                {
                    w.Violations++;
                    w.Problems.Add($"incident {next.Id} rebooted {w.Reboots[next.Id]} times");
                }

                a.DownUntil = w.Now + TimeSpan.FromSeconds(w.Random.Next(60, 481));
                a.Boot = Guid.NewGuid().ToString();
                a.Trouble = false;
                a.UsableUntil = DateTimeOffset.MinValue;
                node.Ready = false;
                break;
            case LadderAction.Uncordon:
                if (w.Chance(0.05) || !Gate(w, a, next.Id, "uncordon"))
                {
                    a.Saved = next;
                    break;
                }

                if (node.Mark == next.Id)
                {
                    if (!Write(w, a.Name, "uncordon"))
                    {
                        a.Saved = next;
                        break;
                    }

                    node.Unschedulable = node.Unschedulable && node.MarkSaysUnschedulableBefore;
                    node.Mark = null;
                }

                w.Recovered++;
                EndIncident(w, a, IncidentLadder.End(next, now, "recovered").Next, markDone: true);
                break;
            case LadderAction.End:
                EndIncident(w, a, next);
                break;
            default:
                a.Saved = next;
                break;
        }

        // An agent killed at a random step (systemd restarts it): what is on disk stays, the lease's usable time goes.
        if (w.Chance(0.003))
        {
            a.DownUntil = w.Now + TimeSpan.FromSeconds(w.Random.Next(5, (int)w.KilledFor.TotalSeconds + 1));
            a.UsableUntil = DateTimeOffset.MinValue;
        }

        // The lease renewed while the incident is open past its first rung (RenewInterval 30 s < Tick here: each tick),
        // only while a token for it is held (IRemediationGate.RenewAsync never takes a lease).
        if (a.Saved is { Ended: null, Rung: not Rung.Restart } open && a.Token != 0 && a.TokenIncident == open.Id)
        {
            Gate(w, a, open.Id, "renew");
        }
    }

    private static void EndIncident(World w, Agent a, Incident ended, bool markDone = false)
    {
        var node = w.Kube[a.Name];
        if (!markDone && node.Mark == ended.Id)
        {
            // Our mark removed (the node left as the admin made it); if the write fails, the mark stays: counted at the end.
            if (Gate(w, a, ended.Id, "unmark") && Write(w, a.Name, "unmark"))
            {
                node.Mark = null;
            }
            else
            {
                return; // not ended yet: tried again at the next tick (the record stays open)
            }
        }

        if (a.Token != 0)
        {
            Ask(w, a, new LeaseAsk(a.Name, ended.Id, "release", a.Token, true));
            a.Token = 0;
        }

        a.Saved = ended;
        w.Ended.Add(ended.Id);
    }

    // The CoordinatorLeaseGate's rules over LeasePacer: null answer (no coordinator) lets a held lease act until its
    // usable time, except the cordon, the reboot and the hard reset, which need an answer (IRemediationGate.AnswerRequired).
    private static bool Gate(World w, Agent a, string incident, string step)
    {
        var token = a.TokenIncident == incident ? a.Token : 0;
        var asked = w.Now;
        var answer = Ask(w, a, new LeaseAsk(a.Name, incident, step, token, false));
        if (answer is null)
        {
            return !IRemediationGate.AnswerRequired.Contains(step) && token != 0 && w.Now < a.UsableUntil;
        }

        if (answer.Granted)
        {
            (a.Token, a.TokenIncident, a.UsableUntil) = (answer.Token, incident, asked + answer.ValidFor - TimeSpan.FromSeconds(30));
            return true;
        }

        if (answer.Lost)
        {
            a.Token = 0;
        }

        return false;
    }

    private static LeaseAnswer? Ask(World w, Agent a, LeaseAsk ask)
    {
        if (w.Now < w.CoordinatorDownUntil || w.Chance(0.05))
        {
            return null; // the instance killed, or a 503 on the way
        }

        var at = w.Now + w.InstanceSkew[w.Random.Next(2)];
        var (answer, write) = LeasePacer.Decide(Pool, [], w.Row, ask, at, Nodes);
        if (write is not null)
        {
            var leases = w.Row.Leases.Where(l => !write.DeleteNodes.Contains(l.Node) && l.Node != write.Upsert?.Node).ToList();
            if (write.Upsert is { } u)
            {
                leases.Add(u);
            }

            w.Row = write.After with { Leases = leases };
        }

        return w.Chance(0.02) ? null : answer; // the answer lost on the way back (the gate retries with its token)
    }

    private static bool Write(World w, string node, string what)
    {
        if (w.Chance(0.05))
        {
            return false; // 409 Conflict or 503: nothing written
        }

        w.Writes++;
        return true;
    }

    private static void Check(World w)
    {
        var cordoned = w.Kube.Count(k => k.Value.Mark is not null && k.Value.Unschedulable);
        w.MaxCordoned = Math.Max(w.MaxCordoned, cordoned);
        if (cordoned > Pool.MaxConcurrent)
        {
            w.Violations++;
            w.Problems.Add($"{cordoned} nodes cordoned by us at {w.Now:HH:mm:ss}: {string.Join(", ", w.Kube.Where(k => k.Value.Mark is not null && k.Value.Unschedulable).Select(k => $"{k.Key} ({k.Value.Mark})"))}");
        }
    }
}
