using Microsoft.Extensions.Configuration;
using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.Common.Tests;

public sealed class UnknownKeysTests
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

        public Dictionary<string, string> Map { get; set; } = [];
    }

    private static List<string> Problems(params (string Key, string Value)[] values)
    {
        var config = new ConfigurationBuilder().AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value))).Build();
        var sample = new Sample();
        config.GetSection("S").Bind(sample);
        return UnknownKeys.Find(config.GetSection("S"), sample).ToList();
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
}
