using System.Diagnostics;
using Toolforge.Agents.NodeAgent.Audit.Iptables;
using Toolforge.Agents.NodeAgent.Cli;
using Toolforge.Agents.NodeAgent.Kubernetes;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.NodeAgent.Tests;

public sealed partial class OfflineBoundsTests
{
    [Fact]
    public void AFileAboveTheBound_IsRefusedBeforeItIsRead_AndAPipeOnceTheBoundIsPassed()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir["big.txt"], new string('a', 5000));
        var ex = Assert.Throws<InvalidDataException>(() => Common.Files.BoundedFile.ReadBytes("--iptables-save", dir["big.txt"], maxBytes: 4096));
        Assert.Equal($"--iptables-save {dir["big.txt"]}: more than 4096 bytes, the most an offline input may be", ex.Message);

        var (buffer, length) = Common.Files.BoundedFile.ReadBytes("--iptables-save", dir["big.txt"], maxBytes: 5000);
        Assert.Equal(5000, length);
        Assert.All(buffer.Take(length), b => Assert.Equal((byte)'a', b));

        // /dev/urandom has no length to look at: refused by what is read (a NUL byte, or the bound).
        Assert.Throws<InvalidDataException>(() => Common.Files.BoundedFile.ReadBytes("--nft-json", "/dev/urandom", maxBytes: 1 << 20));
    }
}
