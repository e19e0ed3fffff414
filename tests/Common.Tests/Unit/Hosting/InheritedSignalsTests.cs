using Toolforge.Agents.Common.Hosting;

namespace Toolforge.Agents.Common.Tests;

/// <summary>The SigIgn mask of /proc/PID/status: bit N-1 for signal N, hexadecimal; unreadable means "not ignored".</summary>
public sealed class InheritedSignalsTests
{
    [Theory]
    [InlineData("Name:\tx\nSigIgn:\t0000000000000001\nSigCgt:\t0\n", 1, true)]
    [InlineData("Name:\tx\nSigIgn:\t0000000000001000\n", 1, false)]
    [InlineData("Name:\tx\nSigIgn:\t0000000000001000\n", 13, true)] // SIGPIPE, which .NET ignores itself
    [InlineData("SigIgn:\t0000000000000000\n", 1, false)]
    [InlineData("SigIgn:\tnot hex\n", 1, false)]
    [InlineData("no such line\n", 1, false)]
    [InlineData(null, 1, false)]
    public void Ignored_ReadsTheSignalsBitOfSigIgn(string? status, int signal, bool ignored) =>
        Assert.Equal(ignored, InheritedSignals.Ignored(signal, status));

    [Fact]
    public void ThisProcess_ReadFromProc_HasSigpipeIgnored_AsDotnetSetsIt()
    {
        Assert.True(InheritedSignals.Ignored(13)); // the live read of /proc/self/status, not only a given text
    }
}
