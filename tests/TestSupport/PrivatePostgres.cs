using System.Globalization;
using Npgsql;

namespace Toolforge.Agents.TestSupport;

/// <summary>
/// A throwaway PostgreSQL 15 cluster (Debian's postgresql-15) in a temp directory, run as the unprivileged postgres
/// user on 127.0.0.1 and its own port and socket directory, never touching the system cluster. A streaming replica of
/// it can be made (pg_basebackup -R) and promoted. Stopped by the PID in postmaster.pid (SIGINT: fast shutdown).
/// Recipe: ../shared/recipes/peers-recipes.md § 1.
/// </summary>
public sealed class PrivatePostgres : IAsyncDisposable
{
    public const string Bin = "/usr/lib/postgresql/15/bin";
    public const string User = "coordinator";
    public const string Password = "coordinator-test-pw";

    private readonly TempDir _dir;
    private readonly string _data;
    private NetNamespace? _netns;
    private string _listen = "127.0.0.1";

    private PrivatePostgres(TempDir dir, string data, int port)
    {
        _dir = dir;
        _data = data;
        Port = port;
    }

    public int Port { get; }

    public string Socket => _dir["sock"];

    /// <summary>The coordinator's connection string (no password: it goes in <see cref="PasswordFile"/>).</summary>
    public string ConnectionString(string database = "coordinator") =>
        $"Host=127.0.0.1;Port={Port.ToString(CultureInfo.InvariantCulture)};Database={database};Username={User}";

    public string PasswordFile => _dir["coordinator.pw"];

    /// <summary>The primary's process id, or null when it is not running.</summary>
    public int? Pid => ReadPid(_data);

    /// <summary>
    /// A cluster on 127.0.0.1 (of <paramref name="netns"/> when given: then also on <paramref name="alsoListen"/>,
    /// which hosts of <paramref name="hostsFrom"/> may connect to; the test reaches it through its socket directory).
    /// </summary>
    public static async Task<PrivatePostgres> StartAsync(NetNamespace? netns = null, string? alsoListen = null, string? hostsFrom = null)
    {
        if (!File.Exists(Path.Combine(Bin, "initdb")))
        {
            throw Peer.Missing("PostgreSQL 15 (" + Bin + "/initdb)", "install Debian package postgresql-15 (./build.sh test does)");
        }

        Peer.Require("runuser", "util-linux");
        var dir = new TempDir("pg");
        var pg = new PrivatePostgres(dir, dir["primary"], Peer.FreePort());
        try
        {
            Directory.CreateDirectory(dir["sock"]);
            await File.WriteAllTextAsync(dir["superpw"], "superpw\n");
            await File.WriteAllTextAsync(pg.PasswordFile, Password + "\n");
            await Run.ProcessAsync("chown", ["-R", "postgres:postgres", dir.Path], TimeSpan.FromSeconds(10));
            await Run.ProcessAsync("chmod", ["0755", dir.Path], TimeSpan.FromSeconds(10));
            await AsPostgres(TimeSpan.FromSeconds(60), Path.Combine(Bin, "initdb"), "-D", pg._data, "-U", "postgres", "--pwfile=" + dir["superpw"],
                "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8");
            pg._netns = netns;
            if (alsoListen is not null)
            {
                pg._listen += "," + alsoListen;
            }

            if (hostsFrom is not null)
            {
                await File.AppendAllTextAsync(Path.Combine(pg._data, "pg_hba.conf"), $"host all all {hostsFrom} scram-sha-256\n");
            }

            await pg.StartAsync(pg._data, pg.Port);
            await pg.PsqlAsync(pg.Port, "postgres",
                $"CREATE ROLE {User} LOGIN PASSWORD '{Password}'",
                $"CREATE DATABASE coordinator OWNER {User}",
                "CREATE ROLE repl REPLICATION LOGIN PASSWORD 'replpw'");
            return pg;
        }
        catch
        {
            await pg.DisposeAsync();
            throw;
        }
    }

    /// <summary>Another empty database owned by the coordinator's role.</summary>
    public Task CreateDatabaseAsync(string name) => PsqlAsync(Port, "postgres", $"CREATE DATABASE {name} OWNER {User}");

    /// <summary>Statements as the cluster's superuser (what an admin of the database server may change under a coordinator).</summary>
    public Task AsSuperuserAsync(string database, params string[] statements) => PsqlAsync(Port, database, statements);

    /// <summary>Stops the primary (fast shutdown) and waits until its process is gone.</summary>
    public Task StopAsync() => StopDataAsync(_data);

    /// <summary>Starts the primary again on the same port.</summary>
    public Task RestartAsync() => StartAsync(_data, Port);

    /// <summary>A streaming replica of the primary on a port of its own (pg_basebackup -R).</summary>
    public async Task<int> StartReplicaAsync()
    {
        var port = Peer.FreePort();
        await AsPostgres(TimeSpan.FromSeconds(60), "env", "PGPASSWORD=replpw", Path.Combine(Bin, "pg_basebackup"), "-h", "127.0.0.1",
            "-p", Port.ToString(CultureInfo.InvariantCulture), "-U", "repl", "-D", _dir["replica"], "-R", "-X", "stream", "-C", "-S", "replica1", "-c", "fast");
        await StartAsync(_dir["replica"], port);
        ReplicaPort = port;
        return port;
    }

    public int? ReplicaPort { get; private set; }

    /// <summary>Promotes the replica to a primary (the documented manual failover).</summary>
    public Task PromoteReplicaAsync() =>
        AsPostgres(TimeSpan.FromSeconds(30), Path.Combine(Bin, "pg_ctl"), "-D", _dir["replica"], "-w", "promote");

    public string ReplicaConnectionString(string database = "coordinator") =>
        $"Host=127.0.0.1;Port={ReplicaPort!.Value.ToString(CultureInfo.InvariantCulture)};Database={database};Username={User}";

    /// <summary>A connection as the coordinator's role (for a test to look at what is stored).</summary>
    public async Task<NpgsqlConnection> OpenAsync(string database = "coordinator", int? port = null)
    {
        var host = _netns is null ? "127.0.0.1" : Socket; // in a namespace of its own: through its socket directory
        var c = new NpgsqlConnection($"Host={host};Port={(port ?? Port).ToString(CultureInfo.InvariantCulture)};Database={database};Username={User};Password={Password};Timeout=5;Command Timeout=10;Pooling=false");
        await c.OpenAsync();
        return c;
    }

    public async Task<long> ScalarAsync(string sql, string database = "coordinator")
    {
        await using var c = await OpenAsync(database);
        await using var cmd = new NpgsqlCommand(sql, c);
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
    }

    private async Task StartAsync(string data, int port)
    {
        string[] start = [Path.Combine(Bin, "pg_ctl"), "-D", data, "-l", data + ".log", "-w", "-t", "50",
            "-o", $"-p {port.ToString(CultureInfo.InvariantCulture)} -k {Socket} -c listen_addresses={_listen} -c fsync=off", "start"];
        if (_netns is not null)
        {
            await _netns.RunAsync("runuser", ["-u", "postgres", "--", .. start]); // pg_ctl -w waits until it accepts (socket)
            return;
        }

        await AsPostgres(TimeSpan.FromSeconds(60), start[0], start[1..]);
        await Peer.WaitForTcpAsync(port, TimeSpan.FromSeconds(30));
    }

    private async Task PsqlAsync(int port, string database, params string[] statements)
    {
        var args = new List<string> { "-X", "-q", "-h", Socket, "-p", port.ToString(CultureInfo.InvariantCulture), "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1" };
        foreach (var s in statements)
        {
            args.Add("-c");
            args.Add(s);
        }

        var r = await Run.ProcessAsync(Path.Combine(Bin, "psql"), args, TimeSpan.FromSeconds(30));
        if (r.ExitCode != 0)
        {
            throw new InvalidOperationException($"psql failed: {r}");
        }
    }

    private static async Task AsPostgres(TimeSpan timeout, string program, params string[] args)
    {
        var r = await Run.ProcessAsync("runuser", ["-u", "postgres", "--", program, .. args], timeout);
        if (r.ExitCode != 0)
        {
            throw new InvalidOperationException($"{Path.GetFileName(program)} failed: {r}");
        }
    }

    private static int? ReadPid(string data)
    {
        var file = Path.Combine(data, "postmaster.pid");
        try
        {
            return File.Exists(file) && int.TryParse(File.ReadLines(file).FirstOrDefault(), out var pid) && Directory.Exists($"/proc/{pid}") ? pid : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    private static async Task StopDataAsync(string data)
    {
        if (ReadPid(data) is not { } pid)
        {
            return;
        }

        await Run.ProcessAsync("kill", ["-INT", pid.ToString(CultureInfo.InvariantCulture)], TimeSpan.FromSeconds(10)); // fast shutdown
        await Peer.EventuallyAsync(() => !Directory.Exists($"/proc/{pid}") || IsZombie(pid), TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(50));
    }

    private static bool IsZombie(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..].StartsWith('Z');
        }
        catch (IOException)
        {
            return true;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopDataAsync(_dir["replica"]);
        await StopDataAsync(_data);
        NpgsqlConnection.ClearAllPools();
        _dir.Dispose();
    }
}
