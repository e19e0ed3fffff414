using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.Coordinator.Storage;

/// <summary>The storage keys of the "Coordinator" section: the engine, SQLite's file, PostgreSQL's connection.</summary>
public sealed class StorageOptions : IValidatedOptions
{
    public const string Section = CoordinatorOptions.Section;

    /// <summary>The storage engine: "sqlite" (one host, the file in <see cref="Database"/>) or "postgresql" (several instances).</summary>
    public string Store { get; set; } = StoreKinds.SqliteName;

    /// <summary>The engine <see cref="Store"/> names (SQLite when it names none: validation refuses that at start).</summary>
    public StoreKind Engine => StoreKinds.Parse(Store) ?? StoreKind.Sqlite;

    /// <summary>The SQLite file (Store = sqlite).</summary>
    public string Database { get; set; } = "/var/lib/toolforge-coordinator/coordinator.db";

    /// <summary>Store = postgresql: where the database is.</summary>
    public PostgreSqlOptions PostgreSql { get; set; } = new();

    public IEnumerable<string> Validate(string section)
    {
        var problems = new List<string>();
        if (StoreKinds.Parse(Store) is not { } engine)
        {
            problems.Add($"{Check.Key(section, nameof(Store))}: must be \"{StoreKinds.SqliteName}\" or \"{StoreKinds.PostgreSqlName}\" (got \"{Store}\")");
        }
        else if (engine == StoreKind.PostgreSql)
        {
            problems.AddRange(PostgreSql.Validate($"{section}:{nameof(PostgreSql)}"));
        }
        else
        {
            problems.AddRange(Check.Required(section, nameof(Database), Database));
        }

        var dir = Engine == StoreKind.Sqlite && Database.Length > 0 && Database != ":memory:" ? Path.GetDirectoryName(Path.GetFullPath(Database)) : null;
        if (dir is not null && !Directory.Exists(dir))
        {
            problems.Add($"{Check.Key(section, nameof(Database))}: directory {dir} does not exist");
        }

        return problems;
    }
}
