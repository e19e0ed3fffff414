using System.CommandLine;
using Microsoft.Extensions.Configuration;
using Toolforge.Agents.Common.Hosting;
using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.Coordinator.Storage;

/// <summary>
/// `toolforge-coordinator migrate-store --from sqlite:PATH --to postgresql [--config FILE]`: copies a stopped
/// coordinator's SQLite store (nodes, agents, findings and check history, events, builds and their logs, audit) into
/// the PostgreSQL database the configuration names. The target must be empty; the copy is one transaction that holds
/// the schema lock (an instance starting meanwhile waits, so none starts on half a store) and the row counts of
/// every table are compared before it commits. Exit 0 copied, 1 refused or failed, 2 usage, 78 bad configuration.
/// </summary>
public static class MigrateStoreCommand
{
    public static Command Create(Option<string?> config)
    {
        var from = new Option<string>("--from") { Description = "The store to copy: sqlite:PATH (the coordinator using it must be stopped)", Required = true };
        var to = new Option<string>("--to") { Description = "postgresql: the database of Coordinator:PostgreSql in the configuration", Required = true };
        to.AcceptOnlyFromAmong(StoreKinds.PostgreSqlName);
        var cmd = new Command("migrate-store", "Copy a SQLite store into an empty PostgreSQL database and verify the copy") { from, to };
        cmd.SetAction(pr => Run(pr.GetValue(from)!, pr.GetValue(config) ?? DaemonInfo.Coordinator.DefaultConfigPath, Console.Out, Console.Error));
        return cmd;
    }

    public static int Run(string from, string configPath, TextWriter stdout, TextWriter stderr)
    {
        if (!from.StartsWith("sqlite:", StringComparison.Ordinal) || from.Length == "sqlite:".Length)
        {
            stderr.WriteLine($"toolforge-coordinator: --from: expected sqlite:PATH (got \"{Sanitize(from)}\")");
            return ExitCodes.Usage;
        }

        var path = from["sqlite:".Length..];
        if (!File.Exists(path))
        {
            stderr.WriteLine($"toolforge-coordinator: --from: {Sanitize(path)} does not exist");
            return ExitCodes.Usage;
        }

        StorageOptions options;
        try
        {
            options = OptionsRegistration.GetExactly<StorageOptions>(
                new ConfigurationBuilder().AddJsonFile(Path.GetFullPath(configPath), optional: false).Build().GetSection(StorageOptions.Section),
                (c, o) => c.Bind(o));
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException or FormatException or InvalidOperationException)
        {
            stderr.WriteLine($"toolforge-coordinator: {Sanitize(configPath)}: {Sanitize(ex.Message)}");
            return ExitCodes.Config;
        }

        var problems = options.PostgreSql.Validate($"{StorageOptions.Section}:{nameof(StorageOptions.PostgreSql)}").ToList();
        if (problems.Count > 0)
        {
            foreach (var p in problems)
            {
                stderr.WriteLine($"toolforge-coordinator: {configPath}: {p}");
            }

            return ExitCodes.Config;
        }

        options.Store = StoreKinds.PostgreSqlName;
        try
        {
            using var source = new SqliteStore(path);
            var was = source.Migrate();
            if (was != SqliteStore.CurrentVersion)
            {
                stdout.WriteLine($"source {path}: schema brought from version {was} to {SqliteStore.CurrentVersion}");
            }

            using var hold = source.HoldWrites(); // nothing changes the source while it is copied
            using var target = CoordinatorStorage.Open(options);
            target.Migrate();
            var existing = target.Counts();
            if (existing.Values.Any(n => n > 0))
            {
                stderr.WriteLine($"toolforge-coordinator: {target.Location} is not empty ({Describe(existing)}); migrate-store copies only into an empty database");
                return ExitCodes.Failed;
            }

            var expected = source.Counts();
            target.ImportAll(table => source.Export(table), expected);
            var copied = target.Counts();
            stdout.WriteLine($"copied {path} to {target.Location}:");
            foreach (var (table, _) in StoreSchema.Tables)
            {
                stdout.WriteLine($"  {table,-16} {expected[table],10} -> {copied[table],10}");
            }

            if (!StoreSchema.Tables.All(t => expected[t.Table] == copied[t.Table]))
            {
                stderr.WriteLine("toolforge-coordinator: the counts differ after the copy; do not start instances on this database");
                return ExitCodes.Failed;
            }

            stdout.WriteLine("verified: every table has the same number of rows. Set Coordinator:Store to \"postgresql\" and start the instances.");
            return ExitCodes.Ok;
        }
        catch (Exception ex) when (ex is System.Data.Common.DbException or StoreUnavailableException or InvalidOperationException or IOException)
        {
            stderr.WriteLine($"toolforge-coordinator: migrate-store failed, nothing was committed: {Sanitize(ex.Message)}");
            return ExitCodes.Failed;
        }
    }

    private static string Describe(IReadOnlyDictionary<string, long> counts) =>
        string.Join(", ", counts.Where(c => c.Value > 0).Select(c => $"{c.Key}={c.Value}"));

    private static string Sanitize(string s) => new([.. s.Select(c => char.IsControl(c) ? '?' : c)]);
}
