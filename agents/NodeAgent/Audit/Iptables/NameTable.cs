using System.Security.Cryptography;
using System.Text;

namespace Toolforge.Agents.NodeAgent.Audit.Iptables;

/// <summary>
/// Chain, table, target and protocol names of a dump, each stored once as UTF-8 and known by a small integer: a
/// 70,000-rule dump names some 40,000 chains, and comparing or grouping by integer needs no string at all. A name
/// becomes a string only when asked for (a finding's message), once. The hash is seeded per process, so names made
/// to collide (they come from Service names) cannot be chosen in advance.
/// </summary>
internal sealed class NameTable
{
    private static readonly uint Seed = BitConverter.ToUInt32(RandomNumberGenerator.GetBytes(4));

    private byte[] _arena = new byte[64 * 1024];
    private int _used;
    private int[] _buckets = new int[4096]; // entry index + 1
    private Entry[] _entries = new Entry[1024];
    private string?[] _strings = new string?[1024];
    private int _count;

    private struct Entry
    {
        public int Start;
        public int Length;
        public uint Hash;
        public int Next; // entry index + 1
    }

    public int Count => _count;

    public ReadOnlySpan<byte> Bytes(int id) => _arena.AsSpan(_entries[id].Start, _entries[id].Length);

    public string this[int id] => _strings[id] ??= Encoding.UTF8.GetString(Bytes(id));

    /// <summary>The id of <paramref name="name"/>, or -1 when the dump never named it.</summary>
    public int Find(ReadOnlySpan<byte> name)
    {
        var hash = Hash(name);
        for (var i = _buckets[hash & (uint)(_buckets.Length - 1)]; i != 0; i = _entries[i - 1].Next)
        {
            ref var e = ref _entries[i - 1];
            if (e.Hash == hash && _arena.AsSpan(e.Start, e.Length).SequenceEqual(name))
            {
                return i - 1;
            }
        }

        return -1;
    }

    public int Find(string name)
    {
        Span<byte> utf8 = stackalloc byte[Encoding.UTF8.GetMaxByteCount(Math.Min(name.Length, 256))];
        return name.Length > 256 ? Find(Encoding.UTF8.GetBytes(name)) : Find(utf8[..Encoding.UTF8.GetBytes(name, utf8)]);
    }

    public int GetOrAdd(string name)
    {
        var id = Find(name);
        return id >= 0 ? id : GetOrAdd(Encoding.UTF8.GetBytes(name));
    }

    public int GetOrAdd(ReadOnlySpan<byte> name)
    {
        var hash = Hash(name);
        ref var bucket = ref _buckets[hash & (uint)(_buckets.Length - 1)];
        for (var i = bucket; i != 0; i = _entries[i - 1].Next)
        {
            ref var e = ref _entries[i - 1];
            if (e.Hash == hash && _arena.AsSpan(e.Start, e.Length).SequenceEqual(name))
            {
                return i - 1;
            }
        }

        if (_used + name.Length > _arena.Length)
        {
            Array.Resize(ref _arena, Math.Max(_arena.Length * 2, _used + name.Length));
        }

        name.CopyTo(_arena.AsSpan(_used));
        if (_count == _entries.Length)
        {
            Array.Resize(ref _entries, _count * 2);
            Array.Resize(ref _strings, _count * 2);
        }

        var id = _count++;
        _entries[id] = new Entry { Start = _used, Length = name.Length, Hash = hash, Next = bucket };
        bucket = id + 1;
        _used += name.Length;
        if (_count > _buckets.Length)
        {
            Rehash();
        }

        return id;
    }

    private void Rehash()
    {
        _buckets = new int[_buckets.Length * 4];
        for (var id = 0; id < _count; id++)
        {
            ref var bucket = ref _buckets[_entries[id].Hash & (uint)(_buckets.Length - 1)];
            _entries[id].Next = bucket;
            bucket = id + 1;
        }
    }

    // FNV-1a, seeded.
    private static uint Hash(ReadOnlySpan<byte> name)
    {
        var h = 2166136261u ^ Seed;
        foreach (var b in name)
        {
            h = (h ^ b) * 16777619u;
        }

        return h;
    }
}
