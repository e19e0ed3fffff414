using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Coordinator.Tests;

public sealed partial class TrustTests
{
    [Fact]
    public async Task RefusalsAreLoggedOncePerMinutePerCallerAndMethod()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.UtcNow);
        var logger = new ListLogger<Security.RefusalLog>();
        var log = new Security.RefusalLog(time, logger);
        for (var i = 0; i < 50; i++)
        {
            log.Note("x.example", "Report", StatusCode.PermissionDenied, "no");
        }

        log.Note("x.example", "ReceiveCommands", StatusCode.PermissionDenied, "no");
        Assert.Equal(2, logger.Lines.Count);
        time.Advance(TimeSpan.FromSeconds(61));
        log.Note("x.example", "Report", StatusCode.PermissionDenied, "no");
        Assert.Equal(3, logger.Lines.Count);
    }
}
