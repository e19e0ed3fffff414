using System.Reflection;
using System.Runtime.Loader;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Packaging.Tests;

/// <summary>
/// One of this solution's programs loaded from its build output (with common), in a collectible context of its own,
/// for tests that read what the program is made of: its options types, its log methods. Disposing unloads it.
/// </summary>
internal sealed class ProgramAssemblies : IDisposable
{
    private readonly Context _context;

    private sealed class Context(string path) : AssemblyLoadContext("program-" + Path.GetFileNameWithoutExtension(path), isCollectible: true)
    {
        private readonly AssemblyDependencyResolver _resolver = new(path);

        protected override Assembly? Load(AssemblyName name) =>
            _resolver.ResolveAssemblyToPath(name) is { } p ? LoadFromAssemblyPath(p) : null;
    }

    public ProgramAssemblies(string program)
    {
        var path = Run.ToolPath(program);
        _context = new Context(path);
        Own = _context.LoadFromAssemblyPath(path);
        Common = _context.LoadFromAssemblyName(new AssemblyName("Toolforge.Agents.Common"));
    }

    /// <summary>The program's own assembly.</summary>
    public Assembly Own { get; }

    /// <summary>Toolforge.Agents.Common, as the program loads it.</summary>
    public Assembly Common { get; }

    public IReadOnlyList<Assembly> Both => [Own, Common];

    public void Dispose() => _context.Unload();
}
