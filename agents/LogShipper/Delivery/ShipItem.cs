using System.Text;

namespace Toolforge.Agents.LogShipper.Delivery;

/// <summary>
/// One journal entry on its way: its cursor and its syslog message (none when filtered or rate-limited), both UTF-8 in
/// one buffer the item keeps. Items are reused (<see cref="ShipItemPool"/>) once delivered and committed, so shipping
/// makes no object per entry.
/// </summary>
public sealed class ShipItem
{
    private const int MinBuffer = 256;
    private const int KeepAtMost = 8 * 1024;

    private byte[] _buffer = [];
    private int _payloadLength = -1;
    private int _cursorLength;

    public volatile bool Done;
    public int Attempts;

    public long RealtimeMicros { get; private set; }

    public bool HasPayload => _payloadLength >= 0;

    public ReadOnlySpan<byte> Payload => HasPayload ? _buffer.AsSpan(0, _payloadLength) : default;

    /// <summary>The cursor as text (made when asked: for the cursor file and for log lines).</summary>
    public string Cursor => Encoding.UTF8.GetString(_buffer.AsSpan(Math.Max(0, _payloadLength), _cursorLength));

    /// <summary>Holds a new entry; <paramref name="hasPayload"/> false when it is not shipped (filtered, rate-limited).</summary>
    public ShipItem Set(ReadOnlySpan<byte> cursor, long realtimeMicros, ReadOnlySpan<byte> payload, bool hasPayload)
    {
        var payloadLength = hasPayload ? payload.Length : 0;
        if (_buffer.Length < payloadLength + cursor.Length)
        {
            // Sized to the entry (rounded to 64 bytes), not doubled: the live items are the shipper's working set
            // (the queue plus the RELP window, thousands of them), and an item only grows to the largest entry it held.
            _buffer = new byte[Math.Max(MinBuffer, (payloadLength + cursor.Length + 63) & ~63)];
        }

        payload[..payloadLength].CopyTo(_buffer);
        cursor.CopyTo(_buffer.AsSpan(payloadLength));
        _payloadLength = hasPayload ? payloadLength : -1;
        _cursorLength = cursor.Length;
        RealtimeMicros = realtimeMicros;
        Done = false;
        Attempts = 0;
        return this;
    }

    /// <summary>Ready for reuse; a buffer grown by a large message is let go.</summary>
    internal void Clear()
    {
        if (_buffer.Length > KeepAtMost)
        {
            _buffer = [];
        }

        _payloadLength = -1;
        _cursorLength = 0;
    }
}

/// <summary>
/// Delivered items go back here (from the sender) and the journal reader takes them (one thread each side): a shared
/// stack under a lock, which the reader drains a batch at a time into its own. Never more than <see cref="MaxKept"/>.
/// </summary>
public sealed class ShipItemPool
{
    public const int MaxKept = 8192;
    private const int Batch = 256;

    private readonly Stack<ShipItem> _shared = new();
    private readonly Stack<ShipItem> _reader = new();

    /// <summary>An item to fill (the reader's thread only).</summary>
    public ShipItem Rent()
    {
        if (_reader.Count == 0)
        {
            lock (_shared)
            {
                while (_shared.Count > 0 && _reader.Count < Batch)
                {
                    _reader.Push(_shared.Pop());
                }
            }
        }

        return _reader.TryPop(out var item) ? item : new ShipItem();
    }

    /// <summary>An item nothing refers to any more (delivered and committed; the sender's thread).</summary>
    public void Return(ShipItem item)
    {
        item.Clear();
        lock (_shared)
        {
            if (_shared.Count < MaxKept)
            {
                _shared.Push(item);
            }
        }
    }
}
