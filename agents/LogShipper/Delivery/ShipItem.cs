using System.Buffers;
using System.Text;

namespace Toolforge.Agents.LogShipper.Delivery;

/// <summary>
/// One journal entry on its way: its cursor and its syslog message (none when filtered or rate-limited), both UTF-8 in
/// one buffer the item keeps; the message is written straight into it (the item is the writer the RFC 5424 mapping
/// writes to). Items are reused (<see cref="ShipItemPool"/>) once delivered and committed, so shipping makes no object
/// per entry.
/// </summary>
public sealed class ShipItem : IBufferWriter<byte>
{
    private const int MinBuffer = 256;
    private const int KeepAtMost = 8 * 1024;

    private byte[] _buffer = [];
    private int _cursorLength;
    private int _length; // cursor, then the message written so far
    private bool _hasPayload;

    public volatile bool Done;
    public int Attempts;

    public long RealtimeMicros { get; private set; }

    public bool HasPayload => _hasPayload;

    public ReadOnlySpan<byte> Payload => _hasPayload ? _buffer.AsSpan(_cursorLength, _length - _cursorLength) : default;

    /// <summary>The cursor as text (made when asked: for the cursor file and for log lines).</summary>
    public string Cursor => Encoding.UTF8.GetString(_buffer.AsSpan(0, _cursorLength));

    /// <summary>
    /// Holds a new entry's cursor. When it is shipped (<paramref name="hasPayload"/>), its message is then written into
    /// the item; otherwise (filtered, rate-limited) the item only carries the cursor to commit.
    /// </summary>
    public ShipItem Start(ReadOnlySpan<byte> cursor, long realtimeMicros, bool hasPayload)
    {
        _length = 0;
        Reserve(cursor.Length + (hasPayload ? MinBuffer : 0));
        cursor.CopyTo(_buffer);
        (_cursorLength, _length, _hasPayload) = (cursor.Length, cursor.Length, hasPayload);
        RealtimeMicros = realtimeMicros;
        Done = false;
        Attempts = 0;
        return this;
    }

    void IBufferWriter<byte>.Advance(int count) => _length += count;

    // Reserve first: it may replace the buffer.
    Memory<byte> IBufferWriter<byte>.GetMemory(int sizeHint)
    {
        var at = Reserve(sizeHint);
        return _buffer.AsMemory(at);
    }

    Span<byte> IBufferWriter<byte>.GetSpan(int sizeHint)
    {
        var at = Reserve(sizeHint);
        return _buffer.AsSpan(at);
    }

    // Room for `size` more bytes (at least one); returns where they start. Grown to what is needed, rounded to 64
    // bytes, not doubled: the live items are the shipper's working set (the queue plus the RELP window, thousands of
    // them), and an item only grows to the largest entry it held.
    private int Reserve(int size)
    {
        var needed = _length + Math.Max(size, 1);
        if (_buffer.Length < needed)
        {
            var grown = new byte[Math.Max(MinBuffer, (needed + 63) & ~63)];
            _buffer.AsSpan(0, _length).CopyTo(grown);
            _buffer = grown;
        }

        return _length;
    }

    /// <summary>Ready for reuse; a buffer grown by a large message is let go.</summary>
    internal void Clear()
    {
        if (_buffer.Length > KeepAtMost)
        {
            _buffer = [];
        }

        (_cursorLength, _length, _hasPayload) = (0, 0, false);
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
