using Microsoft.Extensions.Hosting;

namespace Toolforge.Agents.Common.Hosting;

/// <summary>
/// How a service of a running daemon stops it with an exit code of its own: a problem found after start that a restart
/// will not cure (a database that answers but refuses this binary) is <see cref="ExitCodes.Config"/>, so the unit does
/// not restart on it. <see cref="AgentHost.RunAsync"/> returns the code asked for (process-wide Environment.ExitCode
/// would be overwritten by the program's return value, and would leak between in-process test hosts).
/// </summary>
public sealed class HostExit(IHostApplicationLifetime lifetime)
{
    private int _code;

    /// <summary>The code asked for, or 0.</summary>
    public int Code => Volatile.Read(ref _code);

    public void StopWith(int code)
    {
        Interlocked.CompareExchange(ref _code, code, 0);
        lifetime.StopApplication();
    }
}
