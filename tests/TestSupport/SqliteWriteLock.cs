using Microsoft.Data.Sqlite;

namespace Toolforge.Agents.TestSupport;

/// <summary>SQLite's write lock, held by a connection of the test's own (BEGIN IMMEDIATE) until disposed.</summary>
public sealed class SqliteWriteLock : IAsyncDisposable
{
    private readonly SqliteConnection _connection;

    private SqliteWriteLock(SqliteConnection connection) => _connection = connection;

    public static SqliteWriteLock Take(string path)
    {
        var c = new SqliteConnection($"Data Source={path};Pooling=False");
        c.Open();
        using var begin = c.CreateCommand();
        begin.CommandText = "BEGIN IMMEDIATE";
        begin.ExecuteNonQuery();
        return new SqliteWriteLock(c);
    }

    public async ValueTask DisposeAsync()
    {
        await using (var rollback = _connection.CreateCommand())
        {
            rollback.CommandText = "ROLLBACK";
            await rollback.ExecuteNonQueryAsync();
        }

        await _connection.DisposeAsync();
    }
}
