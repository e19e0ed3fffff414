using System.Threading.Channels;
using Toolforge.Agents.Contracts.V1;

namespace Toolforge.Agents.Coordinator.State;

/// <summary>
/// Fans changes out to Watch streams. Each subscriber has a bounded queue; a subscriber that falls that far behind
/// is ended with an error (and reconnects for a new snapshot) rather than slowing everyone else or growing memory.
/// Every change gets a version ("instance:sequence", the instance a random name of this process) and the last
/// <see cref="RecentLength"/> are kept, so a watch that was cut off resumes from the last version it saw: the changes
/// since, each once, instead of a whole snapshot.
/// </summary>
public sealed class ChangeFeed
{
    private const int QueueLength = 50_000;

    /// <summary>How many changes are kept for resuming watches, at most (and at most <see cref="RecentBytes"/> of them).</summary>
    public const int RecentLength = 10_000;

    /// <summary>The most the kept changes may weigh (a build's change carries its whole image list): 16 MiB.</summary>
    public const long RecentBytes = 16L * 1024 * 1024;

    private readonly object _lock = new();
    private readonly List<Subscription> _subscribers = [];
    private readonly Queue<(WatchEvent Event, int Size)> _recent = new();
    private long _recentBytes;
    private readonly string _instance = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(6));
    private long _sequence;

    public sealed class Subscription : IDisposable
    {
        private readonly ChangeFeed _feed;
        internal readonly Channel<WatchEvent> Channel = System.Threading.Channels.Channel.CreateBounded<WatchEvent>(
            new BoundedChannelOptions(QueueLength) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });

        internal Subscription(ChangeFeed feed) => _feed = feed;

        public ChannelReader<WatchEvent> Reader => Channel.Reader;

        public void Dispose() => _feed.Remove(this);
    }

    public int SubscriberCount
    {
        get
        {
            lock (_lock)
            {
                return _subscribers.Count;
            }
        }
    }

    public Subscription Subscribe() => SubscribeAt().Subscription;

    /// <summary>A subscription, and the version of the last change published before it (what a snapshot made next is at least as new as).</summary>
    public (Subscription Subscription, string Version) SubscribeAt()
    {
        var s = new Subscription(this);
        lock (_lock)
        {
            _subscribers.Add(s);
            return (s, Version(_sequence));
        }
    }

    /// <summary>
    /// A subscription that starts right after <paramref name="version"/>: the changes published since (each once, in
    /// order) and then the live ones; or the reason it cannot (a version of another instance or of this one before a
    /// restart, or older than the changes kept).
    /// </summary>
    public (Subscription? Subscription, List<WatchEvent> Missed, string? Problem) Resume(string version)
    {
        var colon = version.LastIndexOf(':');
        if (colon <= 0 || version[..colon] != _instance
            || !long.TryParse(version.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var after))
        {
            return (null, [], "the version is not one of this coordinator instance (another instance, or before a restart)");
        }

        lock (_lock)
        {
            var oldestKept = _sequence - _recent.Count + 1;
            if (after > _sequence)
            {
                return (null, [], "the version is not one of this coordinator instance (another instance, or before a restart)");
            }

            if (after + 1 < oldestKept)
            {
                return (null, [], $"the version is too old to resume from: {_sequence - after} changes since, the last {_recent.Count} are kept");
            }

            var missed = _recent.Skip((int)(after + 1 - oldestKept)).Select(r => r.Event).ToList();
            var s = new Subscription(this);
            _subscribers.Add(s);
            return (s, missed, null);
        }
    }

    public void Publish(WatchEvent e)
    {
        lock (_lock)
        {
            e.Version = Version(++_sequence);
            var size = e.CalculateSize();
            _recent.Enqueue((e, size));
            _recentBytes += size;
            while (_recent.Count > RecentLength || (_recentBytes > RecentBytes && _recent.Count > 1))
            {
                _recentBytes -= _recent.Dequeue().Size;
            }

            for (var i = _subscribers.Count - 1; i >= 0; i--)
            {
                var s = _subscribers[i];
                if (!s.Channel.Writer.TryWrite(e))
                {
                    s.Channel.Writer.TryComplete(new InvalidOperationException(
                        $"watch fell more than {QueueLength} changes behind; reconnect for a new snapshot"));
                    _subscribers.RemoveAt(i);
                }
            }
        }
    }

    private string Version(long sequence) => $"{_instance}:{sequence.ToString(System.Globalization.CultureInfo.InvariantCulture)}";

    private void Remove(Subscription s)
    {
        lock (_lock)
        {
            _subscribers.Remove(s);
        }

        s.Channel.Writer.TryComplete();
    }
}
