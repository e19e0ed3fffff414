using Toolforge.Agents.BuilderAgent.Build;

namespace Toolforge.Agents.BuilderAgent.Cli;

/// <summary>Build output on stdout, each line prefixed with the image it is about.</summary>
internal sealed class ConsoleBuildLog : IBuildLog
{
    private readonly object _lock = new();

    public void Line(string image, string text)
    {
        lock (_lock)
        {
            Console.Out.WriteLine($"[{image}] {text}");
        }
    }
}
