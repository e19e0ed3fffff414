using System.Collections.Concurrent;
using Grpc.Core;

namespace Toolforge.Agents.Coordinator.Security;

/// <summary>
/// Every open server stream (watch, build-log follow, command stream) with the caller and the roles it needed. When
/// the policy is reloaded, the streams of an identity that is now denied or lost the role are closed (the client sees
/// PERMISSION_DENIED) and the others stay; a stream also ends when its client certificate expires; all end when the
/// coordinator stops.
/// </summary>
public sealed partial class StreamRegistry : IDisposable
{
    private readonly ConcurrentDictionary<OpenStream, byte> _open = new();
    private readonly PolicyProvider _policy;
    private readonly TimeProvider _time;
    private readonly IHostApplicationLifetime _lifetime;
    private readonly ILogger<StreamRegistry> _logger;
    private readonly ITimer _expiry;

    public StreamRegistry(PolicyProvider policy, TimeProvider time, IHostApplicationLifetime lifetime, ILogger<StreamRegistry> logger)
    {
        _policy = policy;
        _time = time;
        _lifetime = lifetime;
        _logger = logger;
        _policy.Changed += Recheck;
        _expiry = time.CreateTimer(_ => CloseExpired(), null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
    }

    public int Count => _open.Count;

    /// <summary>A stream for <paramref name="caller"/>, open while it keeps one of <paramref name="needed"/>.</summary>
    public OpenStream Open(ServerCallContext context, Caller caller, Roles needed)
    {
        var s = new OpenStream(this, caller, needed, CallerAuthorizer.MethodName(context),
            CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, _lifetime.ApplicationStopping));
        _open[s] = 0;
        if (caller.Certificate.NotAfter.ToUniversalTime() <= _time.GetUtcNow().UtcDateTime)
        {
            s.Revoke("the client certificate has expired");
        }

        return s;
    }

    internal void Remove(OpenStream s) => _open.TryRemove(s, out _);

    private void Recheck(SecurityPolicy p)
    {
        foreach (var s in _open.Keys)
        {
            var c = s.Caller;
            if (p.Denied.Match(c.Certificate, c.Names, c.Fingerprint) is { } entry)
            {
                Close(s, $"certificate is now on the deny-list ({entry})");
            }
            else if ((p.RolesOf(c.Identity) & s.Needed) == 0)
            {
                Close(s, $"{c.Identity} no longer holds the {CallerAuthorizer.RoleNames(s.Needed)} role");
            }
        }
    }

    private void CloseExpired()
    {
        var now = _time.GetUtcNow().UtcDateTime;
        foreach (var s in _open.Keys)
        {
            if (s.Caller.Certificate.NotAfter.ToUniversalTime() <= now)
            {
                Close(s, "the client certificate has expired");
            }
        }
    }

    private void Close(OpenStream s, string reason)
    {
        if (s.Revoke(reason))
        {
            Log.StreamClosed(_logger, s.Method, s.Caller.Identity, reason);
        }
    }

    public void Dispose()
    {
        _policy.Changed -= Recheck;
        _expiry.Dispose();
    }

    private static partial class Log
    {
        [LoggerMessage(2012, LogLevel.Warning, "closed the {Method} stream of {Identity}: {Reason}")]
        public static partial void StreamClosed(ILogger logger, string method, string identity, string reason);
    }
}

/// <summary>One open stream: its token ends with the caller, the coordinator, or a revocation.</summary>
public sealed class OpenStream : IDisposable
{
    private readonly StreamRegistry _registry;
    private readonly CancellationTokenSource _cts;
    private string? _revoked;

    internal OpenStream(StreamRegistry registry, Caller caller, Roles needed, string method, CancellationTokenSource cts)
    {
        _registry = registry;
        Caller = caller;
        Needed = needed;
        Method = method;
        _cts = cts;
    }

    public Caller Caller { get; }

    public Roles Needed { get; }

    public string Method { get; }

    public CancellationToken Token => _cts.Token;

    public bool IsCancellationRequested => _cts.IsCancellationRequested;

    /// <summary>Why the coordinator closed this stream, or null.</summary>
    public string? RevokedBecause => Volatile.Read(ref _revoked);

    internal bool Revoke(string reason)
    {
        if (Interlocked.CompareExchange(ref _revoked, reason, null) is not null)
        {
            return false;
        }

        try
        {
            _cts.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // the stream ended meanwhile
        }

        return true;
    }

    /// <summary>After the token fired: ends the call with PERMISSION_DENIED when the coordinator closed it.</summary>
    public void ThrowIfRevoked()
    {
        if (RevokedBecause is { } reason)
        {
            throw new RpcException(new Status(StatusCode.PermissionDenied, reason));
        }
    }

    public void Dispose()
    {
        _registry.Remove(this);
        _cts.Dispose();
    }
}
