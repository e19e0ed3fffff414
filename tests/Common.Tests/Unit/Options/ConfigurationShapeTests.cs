using Microsoft.Extensions.Configuration;
using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.Common.Tests;

public sealed class ConfigurationShapeTests
{
    internal sealed class Inner : IValidatedOptions
    {
        public IEnumerable<string> Validate(string section) => [];

        public int Port { get; set; }
    }

    internal sealed class Sample : IValidatedOptions
    {
        public IEnumerable<string> Validate(string section) => [];

        public string Name { get; set; } = string.Empty;

        public Inner Nested { get; set; } = new();

        public List<string> Items { get; set; } = [];

        public List<string> Defaults { get; set; } = ["a", "b"];

        public List<Inner> Sections { get; set; } = [];

        public Dictionary<string, string> Map { get; set; } = [];
    }

    private static List<string> Problems(params (string Key, string Value)[] values)
    {
        var config = new ConfigurationBuilder().AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value))).Build();
        var sample = OptionsRegistration.GetExactly<Sample>(config.GetSection("S"), (c, o) => c.Bind(o));
        return ConfigurationShape.Problems(config.GetSection("S"), sample).ToList();
    }

    [Fact]
    public void KnownKeys_AnyCase_ListsAndMaps_AreFine() =>
        Assert.Empty(Problems(("S:name", "x"), ("S:Nested:Port", "1"), ("S:Items:0", "a"), ("S:Map:anything", "b")));

    [Fact]
    public void ATypo_IsNamedWithItsPath_AndTheKnownKeys()
    {
        var p = Assert.Single(Problems(("S:Nmae", "x")));
        Assert.StartsWith("S:Nmae: unknown key", p, StringComparison.Ordinal);
        Assert.Contains("Items, Map, Name, Nested", p, StringComparison.Ordinal);
    }

    [Fact]
    public void ATypoInANestedSection_IsFoundToo() =>
        Assert.Equal("S:Nested:Prot", Assert.Single(Problems(("S:Nested:Prot", "1"))).Split(':', 3) is var parts ? $"{parts[0]}:{parts[1]}:{parts[2].Split(':')[0]}" : string.Empty);

    private static Sample Bound(string json)
    {
        var config = new ConfigurationBuilder().AddJsonStream(new MemoryStream(System.Text.Encoding.UTF8.GetBytes(json))).Build();
        return OptionsRegistration.GetExactly<Sample>(config.GetSection("S"), (c, o) => c.Bind(o));
    }

    private static List<string> JsonProblems(string json)
    {
        var config = new ConfigurationBuilder().AddJsonStream(new MemoryStream(System.Text.Encoding.UTF8.GetBytes(json))).Build();
        var sample = OptionsRegistration.GetExactly<Sample>(config.GetSection("S"), (c, o) => c.Bind(o));
        return ConfigurationShape.Problems(config.GetSection("S"), sample).ToList();
    }

    [Fact]
    public void AListInTheConfiguration_ReplacesTheDefault_AndAnEmptyListIsEmpty()
    {
        Assert.Equal(["x"], Bound("""{ "S": { "Defaults": ["x"] } }""").Defaults);
        Assert.Empty(Bound("""{ "S": { "Defaults": [] } }""").Defaults);
        Assert.Equal(["a", "b"], Bound("""{ "S": { "Name": "n" } }""").Defaults);
        Assert.Equal(["k"], Bound("""{ "S": { "Map": { "k": "v" } } }""").Map.Keys);
    }

    [Fact]
    public void ValuesOfTheWrongKind_AreNamed()
    {
        Assert.Equal("S:Defaults: must be a list, not the single value \"x\"", Assert.Single(JsonProblems("""{ "S": { "Defaults": "x" } }""")));
        Assert.Equal("S:Name: must be a single value, not an object", Assert.Single(JsonProblems("""{ "S": { "Name": { "a": 1 } } }""")));
        Assert.Equal("S:Name: must be a single value, not a list", Assert.Single(JsonProblems("""{ "S": { "Name": [1, 2] } }""")));
        Assert.Equal("S:Nested: must be an object (a section), not the single value \"7\"", Assert.Single(JsonProblems("""{ "S": { "Nested": 7 } }""")));
        Assert.Equal("S:Map: must be an object of names and values, not the single value \"v\"", Assert.Single(JsonProblems("""{ "S": { "Map": "v" } }""")));
        Assert.Equal("S:Items:0: must be a single value, not an object", Assert.Single(JsonProblems("""{ "S": { "Items": [{ "a": 1 }] } }""")));
        Assert.Equal("S:Sections:1:Prot: unknown key (known keys here: Port)", Assert.Single(JsonProblems("""{ "S": { "Sections": [{ "Port": 1 }, { "Prot": 2 }] } }""")));
        Assert.Empty(JsonProblems("""{ "S": { "Defaults": "", "Items": [], "Nested": {} } }"""));
    }

    [Fact]
    public void ConversionFailures_AreSaidInTheAdminsWords()
    {
        var line = ConfigurationValues.DescribeConversion(new InvalidOperationException("Failed to convert configuration value '5 minutes' at 'NodeAgent:Kubelet:Interval' to type 'System.TimeSpan'."));
        Assert.Equal("NodeAgent:Kubelet:Interval: must be a duration such as \"00:00:30\" (got \"5 minutes\")", line);
        line = ConfigurationValues.DescribeConversion(new InvalidOperationException("Failed to convert configuration value at 'A:B' to type 'System.Nullable`1[System.Int32]'."));
        Assert.Equal("A:B: must be a whole number", line);
    }

    [Fact]
    public void AFeaturesOwnSection_BelowAnother_IsCheckedByItsOwnOptionsOnly()
    {
        var config = new ConfigurationBuilder().AddJsonStream(new MemoryStream(System.Text.Encoding.UTF8.GetBytes(
            """{ "S": { "Name": "n", "Feature": { "Port": 1 } }, "X": 1 }"""))).Build();
        var services = new Microsoft.Extensions.DependencyInjection.ServiceCollection();
        services.AddValidatedOptions<Sample>(config, "S", (c, o) => c.Bind(o));
        services.AddValidatedOptions<Inner>(config, "S:Feature", (c, o) => c.Bind(o));
        using var sp = Microsoft.Extensions.DependencyInjection.ServiceCollectionContainerBuilderExtensions.BuildServiceProvider(services);
        OptionsGate.ValidateAll(sp); // S does not call S:Feature unknown; S:Feature's own keys are checked by Inner
        Assert.Equal(1, Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<Microsoft.Extensions.Options.IOptions<Inner>>(sp).Value.Port);

        var typo = new ConfigurationBuilder().AddJsonStream(new MemoryStream(System.Text.Encoding.UTF8.GetBytes("""{ "S": { "Feature": { "Prot": 1 } } }"""))).Build();
        var services2 = new Microsoft.Extensions.DependencyInjection.ServiceCollection();
        services2.AddValidatedOptions<Sample>(typo, "S", (c, o) => c.Bind(o));
        services2.AddValidatedOptions<Inner>(typo, "S:Feature", (c, o) => c.Bind(o));
        using var sp2 = Microsoft.Extensions.DependencyInjection.ServiceCollectionContainerBuilderExtensions.BuildServiceProvider(services2);
        var ex = Assert.Throws<Microsoft.Extensions.Options.OptionsValidationException>(() => OptionsGate.ValidateAll(sp2));
        Assert.StartsWith("S:Feature:Prot: unknown key", Assert.Single(ex.Failures), StringComparison.Ordinal);
    }

    [Fact]
    public void AnUnknownKey_BesideAFeaturesOwnSection_ListsThatSectionAmongTheKnownKeys()
    {
        var config = new ConfigurationBuilder().AddJsonStream(new MemoryStream(System.Text.Encoding.UTF8.GetBytes("""{ "S": { "Featur": {} } }"""))).Build();
        var services = new Microsoft.Extensions.DependencyInjection.ServiceCollection();
        services.AddValidatedOptions<Sample>(config, "S", (c, o) => c.Bind(o));
        services.AddValidatedOptions<Inner>(config, "S:Feature", (c, o) => c.Bind(o));
        using var sp = Microsoft.Extensions.DependencyInjection.ServiceCollectionContainerBuilderExtensions.BuildServiceProvider(services);
        var ex = Assert.Throws<Microsoft.Extensions.Options.OptionsValidationException>(() => OptionsGate.ValidateAll(sp));
        Assert.Matches(@"^S:Featur: unknown key \(known keys here: .*\bFeature\b", Assert.Single(ex.Failures));
    }

    [Fact]
    public void AFeaturesOwnSection_WrittenAsOneValue_IsNamedByItsOwnOptions()
    {
        var config = new ConfigurationBuilder().AddJsonStream(new MemoryStream(System.Text.Encoding.UTF8.GetBytes("""{ "S": { "Feature": "on" } }"""))).Build();
        var services = new Microsoft.Extensions.DependencyInjection.ServiceCollection();
        services.AddValidatedOptions<Sample>(config, "S", (c, o) => c.Bind(o));
        services.AddValidatedOptions<Inner>(config, "S:Feature", (c, o) => c.Bind(o));
        using var sp = Microsoft.Extensions.DependencyInjection.ServiceCollectionContainerBuilderExtensions.BuildServiceProvider(services);
        var ex = Assert.Throws<Microsoft.Extensions.Options.OptionsValidationException>(() => OptionsGate.ValidateAll(sp));
        Assert.Equal("S:Feature: must be an object (a section), not the single value \"on\"", Assert.Single(ex.Failures));
    }
}
