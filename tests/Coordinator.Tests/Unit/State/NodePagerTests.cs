using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.Coordinator.State;

namespace Toolforge.Agents.Coordinator.Tests.Unit.State;

public sealed class NodePagerTests
{
    private static List<NodeSummary> Sorted(IEnumerable<string> names, Func<string, NodeState>? state = null) =>
        [.. names.Order(StringComparer.Ordinal).Select(n => new NodeSummary { Name = n, State = state?.Invoke(n) ?? NodeState.Ok })];

    /// <summary>
    /// 100 seeded runs: 1,000 nodes read in pages of 1-200 while nodes are added and removed between the pages. Every
    /// node present from the first page to the last is in exactly one page; one added or removed meanwhile in at most one.
    /// </summary>
    [Fact]
    public void PagesWhileNodesComeAndGo_GiveEveryLastingNodeExactlyOnce()
    {
        for (var seed = 0; seed < 100; seed++)
        {
            var random = new Random(seed);
            var names = new HashSet<string>(Enumerable.Range(0, 1000).Select(i => $"tools-k8s-worker-{i:x4}.example"), StringComparer.Ordinal);
            var lasting = new HashSet<string>(names, StringComparer.Ordinal);
            var seen = new Dictionary<string, int>(StringComparer.Ordinal);
            string? after = null;
            var pages = 0;
            do
            {
                var (page, next) = NodePager.Page(Sorted(names), [], string.Empty, random.Next(1, 201), after);
                foreach (var n in page)
                {
                    seen[n.Name] = seen.GetValueOrDefault(n.Name) + 1;
                }

                after = next.Length == 0 ? null : NodePager.Read(next).Name;
                Assert.True(next.Length == 0 || after == page[^1].Name, $"seed {seed}: a token that does not name the page's last node");
                for (var change = random.Next(0, 20); change > 0; change--)
                {
                    if (random.Next(2) == 0)
                    {
                        names.Add($"tools-k8s-worker-{random.Next(0, 0x2000):x4}.example"); // new, or one already there
                    }
                    else if (names.Count > 0)
                    {
                        var gone = names.ElementAt(random.Next(names.Count));
                        names.Remove(gone);
                        lasting.Remove(gone);
                    }
                }

                Assert.True(++pages < 5000, $"seed {seed}: paging does not end");
            }
            while (after is not null);

            Assert.All(lasting, n => Assert.True(seen.GetValueOrDefault(n) == 1, $"seed {seed}: {n} seen {seen.GetValueOrDefault(n)} times"));
            Assert.All(seen, kv => Assert.True(kv.Value == 1, $"seed {seed}: {kv.Key} seen {kv.Value} times"));
        }
    }

    [Fact]
    public void StatesAndANamePrefix_Filter_AndTheLastPageHasNoToken()
    {
        var sorted = Sorted(["a-1", "a-2", "a-3", "b-1", "b-2"], n => n.EndsWith('2') ? NodeState.Failing : NodeState.Ok);
        var (failing, next) = NodePager.Page(sorted, [NodeState.Failing], string.Empty, 0, null);
        Assert.Equal(["a-2", "b-2"], failing.Select(n => n.Name));
        Assert.Equal(string.Empty, next);

        var (first, token) = NodePager.Page(sorted, [], "a-", 2, null);
        Assert.Equal(["a-1", "a-2"], first.Select(n => n.Name));
        var (second, end) = NodePager.Page(sorted, [], "a-", 2, NodePager.Read(token).Name);
        Assert.Equal(["a-3"], second.Select(n => n.Name));
        Assert.Equal(string.Empty, end);

        // A page that ends exactly at the list's end says so (no empty extra page to ask for).
        Assert.Equal(string.Empty, NodePager.Page(sorted, [], string.Empty, 5, null).Continue);
        Assert.NotEqual(string.Empty, NodePager.Page(sorted, [], string.Empty, 4, null).Continue);
    }

    [Theory]
    [InlineData("not base64 !")]
    [InlineData("aGVsbG8")] // "hello": base64, not ours
    [InlineData("__8")] // not UTF-8
    public void AForeignToken_IsNamed(string token)
    {
        var (name, problem) = NodePager.Read(token);
        Assert.Null(name);
        Assert.Equal("not a continue token of this coordinator", problem);
        Assert.Equal("continue token too long", NodePager.Read(new string('A', 600)).Problem);
    }
}
