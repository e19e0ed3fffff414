using System.Threading.Channels;
using Toolforge.Agents.Contracts.V1;

namespace Toolforge.Agents.Coordinator.State;

/// <summary>
/// Fans changes out to Watch streams. Each subscriber has a bounded queue; a subscriber that falls that far behind
/// is ended with an error (and reconnects for a new snapshot) rather than slowing everyone else or growing memory.
/// </summary>
public sealed class ChangeFeed
{
    private const int QueueLength = 50_000;
    private readonly object _lock = new();
    private readonly List<Subscription> _subscribers = [];

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

    public Subscription Subscribe()
    {
        var s = new Subscription(this);
        lock (_lock)
        {
            _subscribers.Add(s);
        }

        return s;
    }

    public void Publish(WatchEvent e)
    {
        lock (_lock)
        {
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

    private void Remove(Subscription s)
    {
        lock (_lock)
        {
            _subscribers.Remove(s);
        }

        s.Channel.Writer.TryComplete();
    }
}
