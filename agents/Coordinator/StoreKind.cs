namespace Toolforge.Agents.Coordinator;

/// <summary>
/// The storage engine, decided once from <c>Coordinator:Store</c> (Storage/StorageOptions.Engine): what is
/// registered (the change listener and the sweeper lease of several instances only with PostgreSQL) and which engine
/// <see cref="CoordinatorStorage.Open"/> opens follow from it; nothing else compares the configured string.
/// </summary>
public enum StoreKind
{
    /// <summary>One instance on one host: the file in <c>Coordinator:Database</c>.</summary>
    Sqlite,

    /// <summary>Several instances sharing one PostgreSQL database (behind haproxy).</summary>
    PostgreSql,
}

/// <summary>The configuration's names of <see cref="StoreKind"/>.</summary>
public static class StoreKinds
{
    public const string SqliteName = "sqlite";
    public const string PostgreSqlName = "postgresql";

    /// <summary>The engine a configured <c>Store</c> names, or null when it names none.</summary>
    public static StoreKind? Parse(string? value) => value switch
    {
        SqliteName => StoreKind.Sqlite,
        PostgreSqlName => StoreKind.PostgreSql,
        _ => null,
    };

    public static string Name(this StoreKind kind) => kind == StoreKind.PostgreSql ? PostgreSqlName : SqliteName;
}
