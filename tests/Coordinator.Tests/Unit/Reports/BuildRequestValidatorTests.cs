using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.Coordinator.Reports;

namespace Toolforge.Agents.Coordinator.Tests;

/// <summary>An admin's build request, checked before it is queued: at the bounds, and names that only look right.</summary>
public sealed class BuildRequestValidatorTests
{
    private static RequestBuildRequest Request(params string[] images) => new() { Build = new BuildRequest { Images = { images } } };

    [Fact]
    public void Validate_200Images_Pass_And201_AreNamed_AndNoneIsNamedToo()
    {
        Assert.Null(BuildRequestValidator.Validate(Request([.. Enumerable.Range(0, 200).Select(i => $"image-{i}")])));
        Assert.Equal("build.images: 201 images, at most 200 per build",
            BuildRequestValidator.Validate(Request([.. Enumerable.Range(0, 201).Select(i => $"image-{i}")])));
        Assert.Equal("build.images: name at least one image path", BuildRequestValidator.Validate(Request()));
        Assert.Equal("build.images: name at least one image path", BuildRequestValidator.Validate(new RequestBuildRequest()));
    }

    [Fact]
    public void Validate_AnImagePathOf200Characters_Passes_And201_IsNamed()
    {
        Assert.Null(BuildRequestValidator.Validate(Request(new string('a', 200))));
        Assert.StartsWith("build.images: \"aaaa", BuildRequestValidator.Validate(Request(new string('a', 201))), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("python311-sssd/base\n")]
    [InlineData("../etc")]
    [InlineData("a/../b")]
    [InlineData("/base")]
    [InlineData("base/")]
    [InlineData("Base")]
    public void Validate_WhatIsNoImagePath_IsNamed(string image) =>
        Assert.StartsWith("build.images: ", BuildRequestValidator.Validate(Request("base", image)), StringComparison.Ordinal);

    [Fact]
    public void Validate_ATagOf128Characters_Passes_129_OrOneEndingInALineBreak_IsNamed()
    {
        var r = Request("base");
        r.Build.Tag = new string('t', 128);
        Assert.Null(BuildRequestValidator.Validate(r));
        r.Build.Tag += "t";
        Assert.StartsWith("build.tag: ", BuildRequestValidator.Validate(r), StringComparison.Ordinal);
        r.Build.Tag = "latest\n";
        Assert.StartsWith("build.tag: ", BuildRequestValidator.Validate(r), StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_Promote_TagLatest_IsRefused_LatestComesOnlyFromPromotion()
    {
        var r = Request("base");
        r.Build.Tag = "latest";
        Assert.StartsWith("build.tag: latest comes only from promotion", BuildRequestValidator.Validate(r), StringComparison.Ordinal);
        r.Build.Tag = "testing";
        Assert.Null(BuildRequestValidator.Validate(r));
    }

    [Fact]
    public void Validate_ABuilderThatIsNoHostName_IsNamed()
    {
        var r = Request("base");
        r.Builder = "builder-1.example";
        Assert.Null(BuildRequestValidator.Validate(r));
        r.Builder = "builder-1.example\n";
        Assert.StartsWith("builder: ", BuildRequestValidator.Validate(r), StringComparison.Ordinal);
    }
}
