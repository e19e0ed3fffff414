using System.Data.Common;
using System.Globalization;

namespace Toolforge.Agents.Coordinator.Storage;

/// <summary>One package of one pushed digest, as stored (issue 27): a Debian package, or a language package ("npm:name", no architecture).</summary>
public sealed record ImagePackageRow(string Repository, string Digest, string Path, string Name, string Version, string Architecture, long RecordedAtMs);

/// <summary>
/// The image inventories' table and SQL, the same for both engines (migration 7 of each): a row per (repository,
/// digest, package, architecture). A digest's inventory sent again replaces its rows (<see cref="Save"/>).
/// </summary>
internal static class ImageInventorySql
{
    public const string Migration = """
        CREATE TABLE image_packages (
            repository   TEXT NOT NULL,
            digest       TEXT NOT NULL,
            name         TEXT NOT NULL,
            arch         TEXT NOT NULL,
            version      TEXT NOT NULL,
            path         TEXT NOT NULL,
            recorded_at  BIGINT NOT NULL,
            PRIMARY KEY (repository, digest, name, arch)
        );
        CREATE INDEX image_packages_name ON image_packages(name, version);
        """;

    /// <summary>
    /// Migration 8 (SQLite): the key gains the version — a language package ("npm:lodash", no architecture) may be in one
    /// image at two versions. SQLite cannot change a key in place: the table is made again and its rows copied.
    /// </summary>
    public const string SqliteLanguageMigration = """
        CREATE TABLE image_packages_v8 (
            repository   TEXT NOT NULL,
            digest       TEXT NOT NULL,
            name         TEXT NOT NULL,
            arch         TEXT NOT NULL,
            version      TEXT NOT NULL,
            path         TEXT NOT NULL,
            recorded_at  BIGINT NOT NULL,
            PRIMARY KEY (repository, digest, name, arch, version)
        );
        INSERT INTO image_packages_v8 (repository, digest, name, arch, version, path, recorded_at)
            SELECT repository, digest, name, arch, version, path, recorded_at FROM image_packages;
        DROP TABLE image_packages;
        ALTER TABLE image_packages_v8 RENAME TO image_packages;
        CREATE INDEX image_packages_name ON image_packages(name, version);
        """;

    /// <summary>Migration 8 (PostgreSQL): the same key change, in place.</summary>
    public const string PostgresLanguageMigration = """
        ALTER TABLE image_packages DROP CONSTRAINT image_packages_pkey;
        ALTER TABLE image_packages ADD PRIMARY KEY (repository, digest, name, arch, version);
        """;

    public static readonly string[] Columns = ["repository", "digest", "name", "arch", "version", "path", "recorded_at"];

    /// <summary>Rows per INSERT statement (7 parameters each).</summary>
    private const int RowsPerStatement = 100;

    /// <summary>The statements of a <see cref="SaveImageInventory"/>: its digest's earlier rows deleted, then its packages inserted.</summary>
    public static void Save(SaveImageInventory i, List<StoreStatement> s)
    {
        Forget(i.Repository, [i.Digest], s);
        for (var start = 0; start < i.Packages.Count; start += RowsPerStatement)
        {
            var chunk = i.Packages.Skip(start).Take(RowsPerStatement).ToList();
            var values = string.Join(", ", chunk.Select((_, r) =>
                "(" + string.Join(", ", Enumerable.Range(1, 7).Select(k => "$" + (r * 7 + k).ToString(CultureInfo.InvariantCulture))) + ")"));
            var args = chunk.SelectMany(p => new object?[] { i.Repository, i.Digest, p.Name, p.Architecture, p.Version, i.Path, i.RecordedAtMs }).ToArray();
            s.Add(new($"INSERT INTO image_packages({string.Join(", ", Columns)}) VALUES {values}", args));
        }
    }

    /// <summary>The statements that forget the inventories of <paramref name="digests"/> in <paramref name="repository"/>.</summary>
    public static void Forget(string repository, IEnumerable<string> digests, List<StoreStatement> s)
    {
        foreach (var digest in digests)
        {
            s.Add(new("DELETE FROM image_packages WHERE repository = $1 AND digest = $2", [repository, digest]));
        }
    }

    /// <summary>The rows of package <paramref name="name"/> (at <paramref name="version"/>, when given), newest first, at most <paramref name="limit"/>.</summary>
    public static List<ImagePackageRow> Find(DbConnection c, string name, string? version, int limit)
    {
        var rows = new List<ImagePackageRow>();
        (string, object)[] args = version is null ? [("@n", name), ("@l", (long)limit)] : [("@n", name), ("@v", version), ("@l", (long)limit)];
        StoreSql.Each(c, null, $"""
            SELECT repository, digest, path, name, version, arch, recorded_at FROM image_packages
            WHERE name = @n{(version is null ? string.Empty : " AND version = @v")}
            ORDER BY recorded_at DESC, repository, digest, arch, version LIMIT @l
            """, r => rows.Add(new ImagePackageRow(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetString(4), r.GetString(5), r.GetInt64(6))), args);
        return rows;
    }
}
