namespace Toolforge.Agents.Common.Options;

/// <summary>
/// What every timed check's options section holds: <see cref="Enabled"/> and <see cref="Interval"/>, checked the same
/// way everywhere (a positive duration a timer takes). A check's own keys and their checks come in
/// <see cref="ValidateCheck"/>. Its default interval is the check's, given to the constructor.
/// </summary>
public abstract class TimedCheckOptions(TimeSpan interval) : IValidatedOptions
{
    /// <summary>Off: the check is not registered to run (nothing is reported for it).</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>How often the check runs.</summary>
    public TimeSpan Interval { get; set; } = interval;

    public IEnumerable<string> Validate(string section)
    {
        var problems = new List<string>();
        problems.AddRange(Check.Positive(section, nameof(Interval), Interval));
        problems.AddRange(ValidateTimed(section));
        problems.AddRange(ValidateCheck(section));
        return problems;
    }

    /// <summary>The check's own keys.</summary>
    protected abstract IEnumerable<string> ValidateCheck(string section);

    private protected virtual IEnumerable<string> ValidateTimed(string section) => [];
}

/// <summary>A timed check that runs one outside call or program per run, each bounded by <see cref="Timeout"/>.</summary>
public abstract class TimedCallCheckOptions(TimeSpan interval, TimeSpan timeout) : TimedCheckOptions(interval)
{
    /// <summary>How long one run's call may take before it is a failure (the process is killed).</summary>
    public TimeSpan Timeout { get; set; } = timeout;

    private protected override IEnumerable<string> ValidateTimed(string section) => Check.Positive(section, nameof(Timeout), Timeout);
}
