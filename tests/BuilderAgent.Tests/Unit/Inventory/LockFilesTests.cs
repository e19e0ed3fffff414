using System.Text;
using Toolforge.Agents.BuilderAgent.Inventory;

namespace Toolforge.Agents.BuilderAgent.Tests.Unit.Inventory;

/// <summary>The language packages of an image's lock files (issue 27): each format, as its tool writes it.</summary>
public sealed class LockFilesTests
{
    private static IReadOnlyList<LanguagePackage> Parse(string path, string text) => LockFiles.Parse(path, Encoding.UTF8.GetBytes(text)).Packages;

    [Fact]
    public void NpmV3_EveryInstalledPackage_NestedAndScopedToo_LinksAndTheProjectNot()
    {
        var found = Parse("/srv/app/package-lock.json", """
            {"name":"app","version":"1.0.0","lockfileVersion":3,"packages":{
              "":{"name":"app","version":"1.0.0"},
              "node_modules/left-pad":{"version":"1.3.0"},
              "node_modules/@types/node":{"version":"20.11.5"},
              "node_modules/a/node_modules/left-pad":{"version":"1.1.0"},
              "node_modules/dup":{"version":"2.0.0"},
              "node_modules/b/node_modules/dup":{"version":"2.0.0"},
              "node_modules/ws":{"resolved":"packages/ws","link":true},
              "packages/ws":{"name":"ws-local","version":"0.0.1"}}}
            """);
        Assert.Equal(["npm:@types/node 20.11.5", "npm:dup 2.0.0", "npm:left-pad 1.1.0", "npm:left-pad 1.3.0"], found.Select(p => $"{p.Qualified} {p.Version}"));
        Assert.All(found, p => Assert.Equal("/srv/app/package-lock.json", p.LockFile));
    }

    [Fact]
    public void NpmV1_Composer_Gemfile_Pipfile_AsTheirToolsWriteThem()
    {
        Assert.Equal(["a 1.0.0", "b 2.0.0"], Parse("/x/npm-shrinkwrap.json", """{"lockfileVersion":1,"dependencies":{"a":{"version":"1.0.0","dependencies":{"b":{"version":"2.0.0"}}}}}""").Select(p => $"{p.Name} {p.Version}"));
        Assert.Equal(["monolog/monolog 3.5.0", "phpunit/phpunit 10.5.9"], Parse("/srv/composer.lock", """{"packages":[{"name":"monolog/monolog","version":"3.5.0"}],"packages-dev":[{"name":"phpunit/phpunit","version":"v10.5.9"}]}""").Select(p => $"{p.Name} {p.Version}"));
        var gems = Parse("/srv/Gemfile.lock", "GIT\n  remote: https://github.com/x/y.git\n  revision: abc\n  specs:\n    y (0.1.0)\n\nGEM\n  remote: https://rubygems.org/\n  specs:\n    nokogiri (1.15.4-x86_64-linux)\n      racc (~> 1.4)\n    rack (3.0.8)\n\nPLATFORMS\n  x86_64-linux\n\nDEPENDENCIES\n  rack\n");
        Assert.Equal(["nokogiri 1.15.4", "rack 3.0.8", "y 0.1.0"], gems.Select(p => $"{p.Name} {p.Version}")); // GIT specs too
        Assert.Equal("pkg:gem/nokogiri@1.15.4?platform=x86_64-linux", CycloneDx.LanguagePurl(gems[0])); // purl-spec's platform qualifier
        Assert.Equal(["charset-normalizer 3.3.2", "requests 2.31.0"], Parse("/srv/Pipfile.lock", """{"_meta":{},"default":{"requests":{"version":"==2.31.0"},"Charset_Normalizer":{"version":"==3.3.2"},"vcs-thing":{"git":"https://x"}},"develop":{}}""").Select(p => $"{p.Name} {p.Version}"));
        Assert.Equal("pkg:npm/%40types/node@20.11.5", CycloneDx.LanguagePurl(new LanguagePackage("npm", "@types/node", "20.11.5", "/x")));
        Assert.Equal("pkg:composer/monolog/monolog@3.5.0", CycloneDx.LanguagePurl(new LanguagePackage("composer", "monolog/monolog", "3.5.0", "/x")));
    }

    [Theory]
    [InlineData("/srv/package-lock.json", "{\"lockfileVersion\":3}", "not a npm lock file this builder can read")]
    [InlineData("/srv/Gemfile.lock", "GEM\n  specs:\n    broken-line\n", "not a gem lock file")]
    [InlineData("/srv/Gemfile.lock", "PLATFORMS\n  ruby\n", "no GEM section")]
    [InlineData("/srv/composer.lock", "not json", "not a composer lock file")]
    [InlineData("/srv/composer.lock", "{\"packages\":7}", "not a composer lock file")]
    public void ALockFileThisReadingCannotMakeSenseOf_IsRefused_NamingIt(string path, string text, string why)
    {
        var ex = Assert.Throws<InventoryException>(() => Parse(path, text));
        Assert.StartsWith(path + ": ", ex.Message, StringComparison.Ordinal);
        Assert.Contains(why, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void EntriesWithAVersionInNoFormTaken_AreSkippedAndCounted_NotAFailureOfTheFile()
    {
        // npm v1: an alias, a git and a file dependency; v3: an entry with no version, one whose version carries an escape.
        var v1 = LockFiles.Parse("/a/package-lock.json", Encoding.UTF8.GetBytes("""{"lockfileVersion":1,"dependencies":{"ok":{"version":"1.0.0"},"sw":{"version":"npm:string-width@4.2.3"},"g":{"version":"github:u/r#abc"},"f":{"version":"file:../lib"}}}"""));
        Assert.Equal((1, 3), (v1.Packages.Count, v1.Skipped));
        var v3 = LockFiles.Parse("/a/package-lock.json", Encoding.UTF8.GetBytes("{\"packages\":{\"node_modules/x\":{},\"node_modules/y\":{\"version\":\"1.0 \\u001b[31m\"},\"node_modules/z\":{\"version\":\"2.0.0\"}}}"));
        Assert.Equal((1, 2), (v3.Packages.Count, v3.Skipped));
        var composer = LockFiles.Parse("/a/composer.lock", Encoding.UTF8.GetBytes("""{"packages":[{"name":null,"version":"1.0"},{"name":"a/b","version":null},{"name":"c/d","version":"dev-feature/x"},{"name":"E/F","version":"v2.1.0"}]}"""));
        Assert.Equal(["e/f 2.1.0"], composer.Packages.Select(p => $"{p.Name} {p.Version}")); // composer names compare in lower case
        Assert.Equal(3, composer.Skipped);
    }

    [Fact]
    public void MoreThanAnInventoryCarries_IsRefused_ReadNoFurther()
    {
        var many = "GEM\n  specs:\n" + string.Concat(Enumerable.Range(0, 30).Select(n => $"    g{n} (1.0.{n})\n"));
        Assert.Contains("more than 20 packages", Assert.Throws<InventoryException>(() => LockFiles.Parse("/a/Gemfile.lock", Encoding.UTF8.GetBytes(many), max: 20)).Message, StringComparison.Ordinal);
        Assert.Equal(30, LockFiles.Parse("/a/Gemfile.lock", Encoding.UTF8.GetBytes(many), max: 30).Packages.Count);
    }

    [Theory]
    [InlineData("srv/package-lock.json", "not an absolute path")]
    [InlineData("/srv/../etc/package-lock.json", "not an absolute path")]
    [InlineData("/srv/yarn.lock", "not a lock file this builder reads")]
    public void TheLabelsPaths_AreChecked(string label, string why) =>
        Assert.Contains(why, Assert.Throws<InventoryException>(() => LockFiles.Paths(label)).Message, StringComparison.Ordinal);

    [Fact]
    public void TheLabel_CommaSeparated_EachOnce_NoneWhenAbsent()
    {
        Assert.Equal(["/a/package-lock.json", "/b/Gemfile.lock"], LockFiles.Paths(" /a/package-lock.json, /b/Gemfile.lock,/a/package-lock.json "));
        Assert.Empty(LockFiles.Paths(null));
        Assert.Empty(LockFiles.Paths(" "));
        Assert.Contains("at most 16", Assert.Throws<InventoryException>(() => LockFiles.Paths(string.Join(",", Enumerable.Range(0, 17).Select(n => $"/{n}/package-lock.json")))).Message, StringComparison.Ordinal);
    }
}
