using System.Text;
using Toolforge.Agents.BuilderAgent.Inventory;

namespace Toolforge.Agents.BuilderAgent.Tests;

public sealed class DpkgStatusTests
{
    // Stanzas shaped as this builder host's own /var/lib/dpkg/status has them (Debian 12), one of them purged
    // ("install ok not-installed": dpkg-query -W leaves it out, as on this host: 1,023 stanzas, 1,022 listed).
    private const string Status = """
        Package: bsdutils
        Essential: yes
        Status: install ok installed
        Priority: required
        Section: utils
        Installed-Size: 335
        Maintainer: util-linux packagers <util-linux@packages.debian.org>
        Architecture: amd64
        Multi-Arch: foreign
        Source: util-linux (2.38.1-5)
        Version: 1:2.38.1-5+deb12u3
        Description: basic utilities from 4.4BSD-Lite
         This package contains the bare minimum of BSD utilities needed for a
         Debian system.
         .
         Homepage: https://www.kernel.org/pub/linux/utils/util-linux/

        Package: libc6
        Status: install ok installed
        Architecture: amd64
        Version: 2.36-9+deb12u10

        Package: libc6
        Status: install ok installed
        Architecture: i386
        Version: 2.36-9+deb12u10

        Package: old-thing
        Status: deinstall ok config-files
        Architecture: all
        Version: 1.0-1

        Package: purged
        Status: install ok not-installed
        Architecture: amd64

        """;

    private static IReadOnlyList<DebPackage> Parse(string text, string file = "/var/lib/dpkg/status") =>
        DpkgStatus.Parse([(file, Encoding.UTF8.GetBytes(text))]);

    [Fact]
    public void Parse_AStatusFile_ListsWhatDpkgQueryWLists_NotThePurgedOne()
    {
        var packages = Parse(Status);
        Assert.Equal(
            ["bsdutils 1:2.38.1-5+deb12u3 amd64 installed", "libc6 2.36-9+deb12u10 amd64 installed", "libc6 2.36-9+deb12u10 i386 installed", "old-thing 1.0-1 all config-files"],
            packages.Select(p => $"{p.Name} {p.Version} {p.Architecture} {p.State}"));
    }

    [Fact]
    public void Parse_StatusD_OneFilePerPackageWithoutStatus_IsInstalled()
    {
        var packages = DpkgStatus.Parse([
            ("/var/lib/dpkg/status.d/base", Encoding.UTF8.GetBytes("Package: base-files\nVersion: 12.4+deb12u5\nArchitecture: amd64\n")),
            ("/var/lib/dpkg/status.d/tzdata", Encoding.UTF8.GetBytes("Package: tzdata\r\nVersion: 2024a-0+deb12u1\r\nArchitecture: all\r\n")),
        ]);
        Assert.Equal(["base-files 12.4+deb12u5 amd64 installed", "tzdata 2024a-0+deb12u1 all installed"], packages.Select(p => $"{p.Name} {p.Version} {p.Architecture} {p.State}"));
    }

    [Fact]
    public void Parse_StatusD_AsDistrolessLaysItOut_MD5SumsBesideEachPackage_AreNotStanzas()
    {
        // gcr.io/distroless/base-debian12: status.d/<pkg> and status.d/<pkg>.md5sums ("<md5>  <path>" lines) side by side.
        var packages = DpkgStatus.Parse([
            ("/var/lib/dpkg/status.d/base-files", Encoding.UTF8.GetBytes("Package: base-files\nVersion: 12.4+deb12u10\nArchitecture: amd64\nMaintainer: Santiago Vila <sanvila@debian.org>\n")),
            ("/var/lib/dpkg/status.d/base-files.md5sums", Encoding.UTF8.GetBytes("5c5f1b8f8d2a0c7e3f7e4b1a9d2c6e01  etc/debian_version\n0f1e2d3c4b5a69788796a5b4c3d2e1f0  usr/lib/os-release\n")),
            ("/var/lib/dpkg/status.d/libc6", Encoding.UTF8.GetBytes("Package: libc6\nVersion: 2.36-9+deb12u10\nArchitecture: amd64\n")),
            ("/var/lib/dpkg/status.d/libc6.md5sums", Encoding.UTF8.GetBytes("8d777f385d3dfec8815d20f7496026dc  lib/x86_64-linux-gnu/libc.so.6\n")),
            ("/var/lib/dpkg/status.d/nested/evil", Encoding.UTF8.GetBytes("not a stanza\n")),
        ]);
        Assert.Equal(["base-files 12.4+deb12u10 amd64", "libc6 2.36-9+deb12u10 amd64"], packages.Select(p => $"{p.Name} {p.Version} {p.Architecture}"));
    }

    [Fact]
    public void Parse_AnEmptyDatabase_IsNoPackages() => Assert.Empty(Parse(string.Empty));

    [Theory]
    [InlineData("Package: Evil\nVersion: 1\nArchitecture: amd64\n", "not a Debian package name")]
    [InlineData("Package: ok\nVersion: 1\u001b]0;owned\u0007\nArchitecture: amd64\n", "not a Debian version")]
    [InlineData("Package: ok\nVersion: 1 2\nArchitecture: amd64\n", "not a Debian version")]
    [InlineData("Package: ok\nVersion: 1\nArchitecture: AMD64\n", "not a Debian architecture")]
    [InlineData("Version: 1\nArchitecture: amd64\n", "has no Package field")]
    [InlineData("Package: ok\nStatus: install ok installed\nArchitecture: amd64\n", "installed and has no Version")]
    [InlineData("Package: ok\nStatus: installed\nVersion: 1\n", "not \"want flag state\"")]
    [InlineData("Package: ok\nVersion: 1\nthis is not a field\n", "line 3: not a \"Field: value\" line")]
    [InlineData("Package: ok\nVersion: 1\nArchitecture: amd64\n\nPackage: ok\nVersion: 2\nArchitecture: amd64\n", "ok:amd64 is recorded twice")]
    public void Parse_WhatDpkgWouldNotWrite_RefusesTheFile_InOneEscapedLine(string text, string said)
    {
        var ex = Assert.Throws<InventoryException>(() => Parse(text));
        Assert.Contains(said, ex.Message, StringComparison.Ordinal);
        Assert.StartsWith("/var/lib/dpkg/status", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', ex.Message);
        Assert.DoesNotContain('\u001b', ex.Message);
    }

    [Fact]
    public void Parse_FieldsPastTheirBounds_AreRefused()
    {
        var ex = Assert.Throws<InventoryException>(() => Parse($"Package: ok\nVersion: {new string('1', DpkgStatus.MaxVersion + 1)}\n"));
        Assert.Contains($"Version is longer than {DpkgStatus.MaxVersion} characters", ex.Message, StringComparison.Ordinal);
        ex = Assert.Throws<InventoryException>(() => Parse($"Package: {new string('a', DpkgStatus.MaxName + 1)}\nVersion: 1\n"));
        Assert.Contains("Package is longer than", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_MorePackagesThanTheBound_OrMoreBytes_IsRefused()
    {
        var many = new StringBuilder();
        for (var i = 0; i <= DpkgStatus.MaxPackages; i++)
        {
            many.Append("Package: p").Append(i).Append("\nVersion: 1\nArchitecture: all\n\n");
        }

        var ex = Assert.Throws<InventoryException>(() => Parse(many.ToString()));
        Assert.Contains($"more than {DpkgStatus.MaxPackages} packages", ex.Message, StringComparison.Ordinal);

        ex = Assert.Throws<InventoryException>(() => DpkgStatus.Parse([("/var/lib/dpkg/status", new byte[DpkgStatus.MaxBytes + 1])]));
        Assert.Contains("more than 32 MiB", ex.Message, StringComparison.Ordinal);
    }
}
