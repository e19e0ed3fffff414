using Toolforge.Agents.Common.Contracts;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.Coordinator.Builds;

namespace Toolforge.Agents.Coordinator.Tests;

/// <summary>The image inventories of a build's progress are outside input: checked before anything is stored.</summary>
public sealed class InventoryCheckTests
{
    private static CommandProgress With(params ImagePackage[] packages)
    {
        var inventory = new ImageInventory { Repository = "registry.test:5000/fx-base-a", Digest = "sha256:" + new string('a', 64), Path = "base-a" };
        inventory.Packages.AddRange(packages);
        var p = new CommandProgress();
        p.Inventories.Add(inventory);
        return p;
    }

    [Fact]
    public void Problem_RealPackages_AreAccepted() =>
        Assert.Null(InventoryCheck.Problem(With(
            new ImagePackage { Name = "bsdutils", Version = "1:2.38.1-5+deb12u3", Architecture = "amd64" },
            new ImagePackage { Name = "libc6", Version = "2.36-9+deb12u10", Architecture = "i386" },
            new ImagePackage { Name = "tzdata", Version = "2024a-0+deb12u1", Architecture = "all" })));

    [Theory]
    [InlineData("Evil", "1", "amd64")]
    [InlineData("x", "1", "amd64")]
    [InlineData("ok\u001b]0;owned\u0007", "1", "amd64")]
    [InlineData("ok", "1 2", "amd64")]
    [InlineData("ok", "1\n2", "amd64")]
    [InlineData("ok", "1", "AMD64")]
    public void Problem_APackageDebianWouldNotName_IsRefused_InOneLine(string name, string version, string arch)
    {
        var problem = InventoryCheck.Problem(With(new ImagePackage { Name = name, Version = version, Architecture = arch }));
        Assert.NotNull(problem);
        Assert.StartsWith("inventories[0].packages[0]: not a Debian package", problem, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', problem);
        Assert.DoesNotContain('\u001b', problem);
    }

    [Fact]
    public void Problem_TooMany_TooLong_Duplicated_OrABadDigest_IsRefused()
    {
        var many = new CommandProgress();
        for (var i = 0; i <= ReportLimits.MaxInventoriesPerProgress; i++)
        {
            many.Inventories.Add(new ImageInventory { Repository = "r/x", Digest = "sha256:" + new string('a', 64) });
        }

        Assert.Contains("at most 4 per call", InventoryCheck.Problem(many), StringComparison.Ordinal);

        var twice = With(new ImagePackage { Name = "ok", Version = "1", Architecture = "amd64" }, new ImagePackage { Name = "ok", Version = "2", Architecture = "amd64" });
        Assert.Contains("ok:amd64 is listed twice", InventoryCheck.Problem(twice), StringComparison.Ordinal);

        var tooMany = With();
        tooMany.Inventories[0].Packages.AddRange(Enumerable.Range(0, ReportLimits.MaxPackagesPerImage + 1).Select(i => new ImagePackage { Name = $"p{i}", Version = "1", Architecture = "all" }));
        Assert.Contains("packages: at most 20000", InventoryCheck.Problem(tooMany), StringComparison.Ordinal);

        var longVersion = With(new ImagePackage { Name = "ok", Version = new string('1', ReportLimits.MaxPackageVersion + 1), Architecture = "all" });
        Assert.NotNull(InventoryCheck.Problem(longVersion));

        var badDigest = With();
        badDigest.Inventories[0].Digest = "sha256:../../x";
        Assert.Equal("inventories[0].digest: not sha256:<64 hex digits>", InventoryCheck.Problem(badDigest));

        var badRepository = With();
        badRepository.Inventories[0].Repository = "reg/x\u001b[2J";
        Assert.StartsWith("inventories[0].repository:", InventoryCheck.Problem(badRepository), StringComparison.Ordinal);
    }
}
