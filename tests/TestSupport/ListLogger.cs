using Microsoft.Extensions.Logging;

namespace Toolforge.Agents.TestSupport;

/// <summary>A logger that keeps every line it is given, for tests that count log lines.</summary>
public sealed class ListLogger<T> : ILogger<T>
{
    private readonly List<(LogLevel Level, string Message, Exception? Exception)> _lines = [];

    public IReadOnlyList<(LogLevel Level, string Message, Exception? Exception)> Lines
    {
        get
        {
            lock (_lines)
            {
                return _lines.ToList();
            }
        }
    }

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        lock (_lines)
        {
            _lines.Add((logLevel, formatter(state, exception), exception));
        }
    }
}
