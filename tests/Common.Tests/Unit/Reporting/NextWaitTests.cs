using Grpc.Core;
using Toolforge.Agents.Common.Contracts;
using Toolforge.Agents.Common.Reporting;

namespace Toolforge.Agents.Common.Tests;

/// <summary>
/// After a failed report (issue 28, a restart without a stampede): the coordinator's retry hint wins; else the first
/// failure of a streak that found the coordinator gone waits a uniformly random moment of the reconnect window it last
/// told; else the backoff.
/// </summary>
public sealed class NextWaitTests
{
    private static readonly TimeSpan Backoff = TimeSpan.FromMilliseconds(700);

    private static RpcException Failure(StatusCode status, string? hint = null) =>
        new(new Status(status, "x"), hint is null ? Metadata.Empty : new Metadata { { ContractNames.RetryPushbackTrailer, hint } });

    [Fact]
    public void TheCoordinatorsHint_IsTaken_BoundedBelowAndAbove()
    {
        var r = new Random(1);
        Assert.Equal(TimeSpan.FromMilliseconds(2500), ReportingService.NextWait(Failure(StatusCode.ResourceExhausted, "2500"), Backoff, true, TimeSpan.FromSeconds(20), r));
        Assert.Equal(ReportingService.MinimumGap, ReportingService.NextWait(Failure(StatusCode.ResourceExhausted, "0"), Backoff, false, TimeSpan.Zero, r));
        Assert.Equal(ReportingService.LongestWait, ReportingService.NextWait(Failure(StatusCode.ResourceExhausted, "999999999999"), Backoff, false, TimeSpan.Zero, r));
        // Not a number (or negative): not a hint; the backoff.
        Assert.Equal(Backoff, ReportingService.NextWait(Failure(StatusCode.ResourceExhausted, "-5"), Backoff, true, TimeSpan.Zero, r));
        Assert.Equal(Backoff, ReportingService.NextWait(Failure(StatusCode.ResourceExhausted, "soon"), Backoff, true, TimeSpan.Zero, r));
    }

    [Fact]
    public void TheFirstFailureOfAStreak_WithTheCoordinatorGone_IsSpreadUniformlyOverTheWindow()
    {
        var r = new Random(42);
        var window = TimeSpan.FromSeconds(20);
        var waits = Enumerable.Range(0, 10_000).Select(_ => ReportingService.NextWait(Failure(StatusCode.Unavailable), Backoff, false, window, r)).ToList();
        Assert.All(waits, w => Assert.InRange(w, TimeSpan.Zero, window));
        // Uniform: each of the window's ten tenths gets about a tenth (1,000 ± 150) of 10,000 agents.
        var tenths = waits.GroupBy(w => (int)(w / window * 10)).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(10, tenths.Count);
        Assert.All(tenths.Values, n => Assert.InRange(n, 850, 1150));

        // Later failures of the streak, other failures, or a window shorter than the backoff: the backoff.
        Assert.Equal(Backoff, ReportingService.NextWait(Failure(StatusCode.Unavailable), Backoff, true, window, r));
        Assert.Equal(Backoff, ReportingService.NextWait(Failure(StatusCode.PermissionDenied), Backoff, false, window, r));
        Assert.Equal(Backoff, ReportingService.NextWait(Failure(StatusCode.Unavailable), Backoff, false, TimeSpan.FromMilliseconds(500), r));
    }

    [Fact]
    public void ADurationFromTheCoordinator_IsBounded_AndABrokenOneIsIgnored()
    {
        Assert.Null(ReportingService.Bounded(null));
        Assert.Null(ReportingService.Bounded(new Google.Protobuf.WellKnownTypes.Duration { Seconds = 0 }));
        Assert.Null(ReportingService.Bounded(new Google.Protobuf.WellKnownTypes.Duration { Seconds = -5 }));
        Assert.Null(ReportingService.Bounded(new Google.Protobuf.WellKnownTypes.Duration { Seconds = 1, Nanos = -1 })); // mixed signs: not a Duration
        Assert.Null(ReportingService.Bounded(new Google.Protobuf.WellKnownTypes.Duration { Seconds = 1, Nanos = 2_000_000_000 }));
        Assert.Equal(TimeSpan.FromSeconds(30), ReportingService.Bounded(new Google.Protobuf.WellKnownTypes.Duration { Seconds = 30 }));
        Assert.Equal(ReportingService.LongestWait, ReportingService.Bounded(new Google.Protobuf.WellKnownTypes.Duration { Seconds = 86_400 * 40 }));
    }

    [Fact]
    public void ATlsStreamTornDownByTheServer_IsSaidAsTheRefusedCertificate_WithNoTypeName()
    {
        // What a coordinator refusing our client certificate sometimes looks like (seen in CI): the stream disposed under the call.
        var ex = new RpcException(new Status(StatusCode.Unavailable, "Error starting gRPC call.",
            new System.Net.Http.HttpRequestException("An error occurred while sending the request.", new ObjectDisposedException("System.Net.Security.SslStream"))));
        var line = RpcFailure.Describe(ex, "https://c:9500", TimeSpan.FromSeconds(10), RpcFailure.DaemonKeys);
        Assert.Contains("refused our client certificate (Coordinator:Certificate)", line, StringComparison.Ordinal);
        Assert.DoesNotContain("System.", line, StringComparison.Ordinal);
    }
}
