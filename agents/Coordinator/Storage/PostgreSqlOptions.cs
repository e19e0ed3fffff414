using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.Coordinator.Storage;

/// <summary>The "Coordinator:PostgreSql" section: an Npgsql connection string without the password, and the file that holds it.</summary>
public sealed class PostgreSqlOptions : IValidatedOptions
{
    /// <summary>e.g. "Host=db1.example;Port=5432;Database=toolforge_coordinator;Username=coordinator;SSL Mode=VerifyFull".</summary>
    public string ConnectionString { get; set; } = string.Empty;

    /// <summary>A file (mode 0600/0640, owned by the service) whose first line is the password; empty for peer or certificate auth.</summary>
    public string PasswordFile { get; set; } = string.Empty;

    /// <summary>Seconds a statement may run before it is cancelled (a hung database must not hang the coordinator).</summary>
    public int CommandTimeoutSeconds { get; set; } = 10;

    public IEnumerable<string> Validate(string section)
    {
        var problems = new List<string>();
        if (ConnectionString.Trim().Length == 0)
        {
            problems.Add($"{Check.Key(section, nameof(ConnectionString))}: required when Store is \"postgresql\"");
        }
        else
        {
            try
            {
                var b = new Npgsql.NpgsqlConnectionStringBuilder(ConnectionString);
                if (!string.IsNullOrEmpty(b.Password))
                {
                    problems.Add($"{Check.Key(section, nameof(ConnectionString))}: holds a password; put it in {nameof(PasswordFile)} instead (the JSON puppet writes is readable by more than the service)");
                }

                if (string.IsNullOrEmpty(b.Host))
                {
                    problems.Add($"{Check.Key(section, nameof(ConnectionString))}: names no Host");
                }
            }
            catch (ArgumentException ex)
            {
                problems.Add($"{Check.Key(section, nameof(ConnectionString))}: not a valid connection string ({ex.Message})");
            }
        }

        if (PasswordFile.Length > 0)
        {
            problems.AddRange(Check.FileExists(section, nameof(PasswordFile), PasswordFile));
        }

        problems.AddRange(Check.Range(section, nameof(CommandTimeoutSeconds), CommandTimeoutSeconds, 1, 600));
        return problems;
    }
}
