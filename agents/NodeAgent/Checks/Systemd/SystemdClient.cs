using Tmds.DBus.Protocol;

namespace Toolforge.Agents.NodeAgent.Checks.Systemd;

/// <summary>What systemd says about a unit.</summary>
public sealed record UnitStatus(string Unit, string LoadState, string ActiveState, string SubState, uint NRestarts, ulong InactiveExitTimestampMicros);

/// <summary>A D-Bus problem (no bus, no answer, an error reply), named plainly.</summary>
public sealed class SystemdException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// systemd's manager over the system D-Bus (Tmds.DBus.Protocol): LoadUnit then Properties.Get for a unit's
/// ActiveState, SubState, LoadState, InactiveExitTimestamp and (services) NRestarts, and RestartUnit. Every call has a
/// deadline; a bus that does not answer is dropped and reconnected on the next call.
/// </summary>
public sealed class SystemdClient(string address, TimeSpan timeout) : IDisposable
{
    private const string Service = "org.freedesktop.systemd1";
    private const string ManagerPath = "/org/freedesktop/systemd1";
    private const string Manager = "org.freedesktop.systemd1.Manager";
    private readonly SemaphoreSlim _lock = new(1, 1);
    private DBusConnection? _connection;

    public string Address { get; } = address;

    // "unix:path=/run/dbus/system_bus_socket" (the system bus: DBUS_SYSTEM_BUS_ADDRESS, else that path) as unix:///path.
    private string BusEndpoint
    {
        get
        {
            var a = Address == "system" ? Environment.GetEnvironmentVariable("DBUS_SYSTEM_BUS_ADDRESS") ?? "unix:path=/run/dbus/system_bus_socket" : Address;
            return a.StartsWith("unix:path=", StringComparison.Ordinal) ? "unix://" + a["unix:path=".Length..].Split(',')[0] : a;
        }
    }

    private async Task<DBusConnection> ConnectionAsync(CancellationToken ct)
    {
        if (_connection is not null)
        {
            return _connection;
        }

        var connection = Address == "system" ? new DBusConnection(DBusAddress.System!) : new DBusConnection(Address);
        try
        {
            await connection.ConnectAsync().AsTask().WaitAsync(timeout, ct).ConfigureAwait(false);
        }
        catch
        {
            connection.Dispose();
            throw;
        }

        _connection = connection;
        return connection;
    }

    private async Task<T> CallAsync<T>(string what, Func<DBusConnection, Task<T>> call, CancellationToken ct)
    {
        await _lock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            var c = await ConnectionAsync(ct).ConfigureAwait(false);
            return await call(c).WaitAsync(timeout, ct).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            Drop();
            throw new SystemdException($"{what}: the D-Bus peer at {Address} did not answer within {timeout.TotalSeconds:0.#}s");
        }
        catch (DBusErrorReplyException ex)
        {
            throw new SystemdException($"{what}: {ex.ErrorName}: {ex.ErrorMessage}", ex);
        }
        catch (Exception ex) when (ex is DBusExceptionBase or IOException or System.Net.Sockets.SocketException)
        {
            Drop();
            throw new SystemdException($"{what}: {Common.Checks.PeerErrors.Describe(ex, "D-Bus", "dbus-daemon (systemd)", BusEndpoint).Message}", ex);
        }
        finally
        {
            _lock.Release();
        }
    }

    private void Drop()
    {
        _connection?.Dispose();
        _connection = null;
    }

    public Task<UnitStatus> GetUnitAsync(string unit, CancellationToken ct) => CallAsync($"reading unit {unit}", async c =>
    {
        var path = await LoadUnitAsync(c, unit).ConfigureAwait(false);
        var load = await GetStringAsync(c, path, "org.freedesktop.systemd1.Unit", "LoadState").ConfigureAwait(false);
        var active = await GetStringAsync(c, path, "org.freedesktop.systemd1.Unit", "ActiveState").ConfigureAwait(false);
        var sub = await GetStringAsync(c, path, "org.freedesktop.systemd1.Unit", "SubState").ConfigureAwait(false);
        var exit = (ulong)(await GetAsync(c, path, "org.freedesktop.systemd1.Unit", "InactiveExitTimestamp").ConfigureAwait(false)).GetUInt64();
        uint restarts = 0;
        if (unit.EndsWith(".service", StringComparison.Ordinal) && load == "loaded")
        {
            restarts = (await GetAsync(c, path, "org.freedesktop.systemd1.Service", "NRestarts").ConfigureAwait(false)).GetUInt32();
        }

        return new UnitStatus(unit, load, active, sub, restarts, exit);
    }, ct);

    /// <summary>RestartUnit(name, mode): returns the job's object path.</summary>
    public Task<string> RestartUnitAsync(string unit, string mode, CancellationToken ct) => CallAsync($"restarting unit {unit}", c =>
    {
        using var writer = c.GetMessageWriter();
        writer.WriteMethodCallHeader(Service, ManagerPath, Manager, "RestartUnit", "ss", MessageFlags.None);
        writer.WriteString(unit);
        writer.WriteString(mode);
        return c.CallMethodAsync(writer.CreateMessage(), static (m, _) => m.GetBodyReader().ReadObjectPathAsString(), null);
    }, ct);

    /// <summary>
    /// logind's Reboot(interactive=false) (org.freedesktop.login1.Manager on /org/freedesktop/login1): the clean
    /// reboot systemctl reboot asks for, honouring logind's inhibitors' rules for root. Returns when logind accepted it.
    /// </summary>
    public Task<bool> RebootAsync(CancellationToken ct) => CallAsync("rebooting through logind", async c =>
    {
        await c.CallMethodAsync(RebootMessage(c)).ConfigureAwait(false);
        return true;
    }, ct);

    private static MessageBuffer RebootMessage(DBusConnection c)
    {
        using var writer = c.GetMessageWriter();
        writer.WriteMethodCallHeader("org.freedesktop.login1", "/org/freedesktop/login1", "org.freedesktop.login1.Manager", "Reboot", "b", MessageFlags.None);
        writer.WriteBool(false);
        return writer.CreateMessage();
    }

    private static Task<string> LoadUnitAsync(DBusConnection c, string unit)
    {
        using var writer = c.GetMessageWriter();
        writer.WriteMethodCallHeader(Service, ManagerPath, Manager, "LoadUnit", "s", MessageFlags.None);
        writer.WriteString(unit);
        return c.CallMethodAsync(writer.CreateMessage(), static (m, _) => m.GetBodyReader().ReadObjectPathAsString(), null);
    }

    private static async Task<string> GetStringAsync(DBusConnection c, string path, string iface, string property) =>
        (await GetAsync(c, path, iface, property).ConfigureAwait(false)).GetString();

    private static Task<VariantValue> GetAsync(DBusConnection c, string path, string iface, string property)
    {
        using var writer = c.GetMessageWriter();
        writer.WriteMethodCallHeader(Service, path, "org.freedesktop.DBus.Properties", "Get", "ss", MessageFlags.None);
        writer.WriteString(iface);
        writer.WriteString(property);
        return c.CallMethodAsync(writer.CreateMessage(), static (m, _) => m.GetBodyReader().ReadVariantValue(), null);
    }

    public void Dispose()
    {
        Drop();
        _lock.Dispose();
    }
}
