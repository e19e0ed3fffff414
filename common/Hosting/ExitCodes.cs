namespace Toolforge.Agents.Common.Hosting;

/// <summary>Every program's exit codes, in one place (sysexits.h where it has a word for it).</summary>
public static class ExitCodes
{
    public const int Ok = 0;

    /// <summary>Ran, and found something wrong: a check failing, a finding, a build or a delivery that failed.</summary>
    public const int Failed = 1;

    /// <summary>Bad usage or bad input: an unknown flag, a file that is not what it should be.</summary>
    public const int Usage = 2;

    /// <summary>EX_CONFIG: the configuration is wrong; the units do not restart on it (RestartPreventExitStatus=78).</summary>
    public const int Config = 78;
}
