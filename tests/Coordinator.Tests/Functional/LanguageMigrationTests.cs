using Microsoft.Data.Sqlite;
using Toolforge.Agents.Coordinator.Storage;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Coordinator.Tests;

/// <summary>
/// Migration 8 (issue 27's language packages) on a store that already holds inventories: the rows of schema 7 are kept,
/// and a package may then be stored at two versions of one digest (the key gained the version).
/// </summary>
public sealed class LanguageMigrationTests
{
    [Fact]
    public void ASchema7StoreWithInventories_KeepsEveryRow_AndTakesTwoVersionsOfOnePackageAfter()
    {
        using var dir = new TempDir("migrate8");
        var path = dir["state.db"];
        using (var c = new SqliteConnection($"Data Source={path};Pooling=False"))
        {
            c.Open();
            using var tx = c.BeginTransaction();
            foreach (var migration in SqliteStore.Migrations.Take(7))
            {
                using var m = c.CreateCommand();
                m.Transaction = tx;
                m.CommandText = migration;
                m.ExecuteNonQuery();
            }

            using var rows = c.CreateCommand();
            rows.Transaction = tx;
            rows.CommandText = """
                INSERT INTO image_packages(repository, digest, name, arch, version, path, recorded_at) VALUES
                  ('r/x', 'sha256:aa', 'openssl', 'amd64', '3.0.15-1', 'x', 1),
                  ('r/x', 'sha256:aa', 'libc6', 'amd64', '2.36-9', 'x', 1),
                  ('r/y', 'sha256:bb', 'openssl', 'amd64', '3.0.14-1', 'y', 2);
                PRAGMA user_version = 7;
                """;
            rows.ExecuteNonQuery();
            tx.Commit();
        }

        using var store = new SqliteStore(path);
        Assert.Equal(7, store.Migrate());
        Assert.Equal(SqliteStore.CurrentVersion, store.SchemaVersion);
        Assert.Equal(["r/y 3.0.14-1", "r/x 3.0.15-1"], store.FindImagePackages("openssl", null, 10).Select(r => $"{r.Repository} {r.Version}"));
        Assert.Single(store.FindImagePackages("libc6", "2.36-9", 10));

        // The new key: one digest, one package name, two versions (a lock file pinning both).
        using var c2 = new SqliteConnection($"Data Source={path};Pooling=False");
        c2.Open();
        using var insert = c2.CreateCommand();
        insert.CommandText = """
            INSERT INTO image_packages(repository, digest, name, arch, version, path, recorded_at) VALUES
              ('r/z', 'sha256:cc', 'npm:left-pad', '', '1.1.0', 'z', 3),
              ('r/z', 'sha256:cc', 'npm:left-pad', '', '1.3.0', 'z', 3);
            """;
        insert.ExecuteNonQuery();
        Assert.Equal(["1.1.0", "1.3.0"], store.FindImagePackages("npm:left-pad", null, 10).Select(r => r.Version)); // ordered by version
    }
}
