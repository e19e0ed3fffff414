using System.Buffers;
using System.Globalization;
using System.Text;
using Toolforge.Agents.Common.Journal;
using Toolforge.Agents.Common.Syslog;
using Toolforge.Agents.LogShipper.Journal;

namespace Toolforge.Agents.LogShipper.Tests;

/// <summary>
/// The shipper writes each entry's message straight from the journal's UTF-8 bytes; that must be byte for byte what the
/// text mapping (EntryMapper.Map, then Rfc5424.Write) makes of the same entry, for any field values, and it must not
/// allocate.
/// </summary>
public sealed class EntryMapperTests
{
    private static readonly string[] Names =
    [
        "MESSAGE", "PRIORITY", "SYSLOG_FACILITY", "_HOSTNAME", "SYSLOG_IDENTIFIER", "_COMM", "SYSLOG_PID", "_PID",
        "MESSAGE_ID", "_SYSTEMD_UNIT", "_BOOT_ID", "_TRANSPORT", "_SOURCE_REALTIME_TIMESTAMP", "__CURSOR", "OTHER_FIELD",
    ];

    private static readonly byte[][] Values =
    [
        [], "0"u8.ToArray(), "3"u8.ToArray(), "7"u8.ToArray(), "8"u8.ToArray(), "23"u8.ToArray(), "24"u8.ToArray(), "05"u8.ToArray(),
        "+5"u8.ToArray(), " 5"u8.ToArray(), "5 "u8.ToArray(), "-1"u8.ToArray(), "5\0"u8.ToArray(), "\0"u8.ToArray(),
        "99999999999999999999999"u8.ToArray(), "1700000000123456"u8.ToArray(), "kernel"u8.ToArray(), "kubelet.service"u8.ToArray(),
        "hello world"u8.ToArray(), "a\"b\\c]d"u8.ToArray(), "wörker"u8.ToArray(), "emoji 😀 end"u8.ToArray(), "tab\there"u8.ToArray(),
        [0xff, 0xfe, (byte)'x'], [(byte)'a', 0xe2, 0x82], [0xc3], [0xed, 0xa0, 0x80], // invalid UTF-8: lone bytes, a cut sequence, a surrogate
        "s=0123456789abcdef;i=1a;b=fedcba9876543210;m=2b;t=5f0;x=77"u8.ToArray(),
        Encoding.UTF8.GetBytes(new string('é', 700)), Encoding.UTF8.GetBytes(new string('h', 300) + "😀" + new string('i', 40)),
    ];

    private static void Fill(JournalEntry e, Random rng)
    {
        e.Begin(rng.Next(2) == 0 ? 0 : 1_600_000_000_000_000 + rng.Next());
        var sink = (IJournalFieldSink)e;
        for (var n = rng.Next(0, 20); n > 0; n--) // repeated fields too: the first counts
        {
            sink.Field(Encoding.ASCII.GetBytes(Names[rng.Next(Names.Length)]), Values[rng.Next(Values.Length)]);
        }
    }

    [Fact]
    public void WritingFromBytes_IsByteForByteTheTextMapping_ForAnyFields()
    {
        var rng = new Random(16);
        var entry = new JournalEntry(); // reused, as the shipper does: nothing of one entry may show in the next
        var direct = new ArrayBufferWriter<byte>();
        for (var i = 0; i < 20_000; i++)
        {
            Fill(entry, rng);
            var max = rng.Next(3) == 0 ? rng.Next(0, 400) : 64 * 1024;
            direct.ResetWrittenCount();
            var cutDirect = EntryMapper.Write(entry, direct, max);
            var viaText = new ArrayBufferWriter<byte>();
            var cutText = Rfc5424.Write(EntryMapper.Map(entry), viaText, max);
            if (!direct.WrittenSpan.SequenceEqual(viaText.WrittenSpan) || cutDirect != cutText)
            {
                Assert.Fail($"entry {i} (max {max}): from bytes ({cutDirect} cut)\n{Encoding.UTF8.GetString(direct.WrittenSpan)}\nfrom text ({cutText} cut)\n{Encoding.UTF8.GetString(viaText.WrittenSpan)}");
            }
        }
    }

    [Fact]
    public void AReusedShipItem_HoldsExactlyEachEntrysMessageAndCursor()
    {
        var rng = new Random(5);
        var entry = new JournalEntry();
        var item = new Toolforge.Agents.LogShipper.Delivery.ShipItem(); // reused for entries of every size, as the pool does
        var expected = new ArrayBufferWriter<byte>();
        for (var i = 0; i < 5_000; i++)
        {
            Fill(entry, rng);
            var ship = rng.Next(4) > 0;
            item.Start(entry[JournalField.Cursor], entry.RealtimeMicros, ship);
            expected.ResetWrittenCount();
            if (ship)
            {
                Assert.Equal(EntryMapper.Write(entry, expected, 64 * 1024), EntryMapper.Write(entry, item, 64 * 1024));
            }

            Assert.Equal(ship, item.HasPayload);
            Assert.True(expected.WrittenSpan.SequenceEqual(item.Payload), $"entry {i}: the item's message differs");
            Assert.Equal(entry.Cursor, item.Cursor);
            Assert.Equal(entry.RealtimeMicros, item.RealtimeMicros);
        }
    }

    [Fact]
    public void AnEntry_MapsToTheDocumentedFields()
    {
        var e = new JournalEntry();
        e.Begin(1_700_000_000_000_000);
        var sink = (IJournalFieldSink)e;
        sink.Field("__CURSOR"u8, "s=1;i=2"u8);
        sink.Field("_COMM"u8, "kubelet"u8);
        sink.Field("_PID"u8, "42"u8);
        sink.Field("PRIORITY"u8, "3"u8);
        sink.Field("PRIORITY"u8, "6"u8); // a repeated field: the first counts
        sink.Field("SYSLOG_FACILITY"u8, "3"u8);
        sink.Field("_HOSTNAME"u8, "worker-1"u8);
        sink.Field("_SYSTEMD_UNIT"u8, "kubelet.service"u8);
        sink.Field("_SOURCE_REALTIME_TIMESTAMP"u8, "1700000000123456"u8);
        sink.Field("MESSAGE"u8, "ready \"now\""u8);
        var w = new ArrayBufferWriter<byte>();
        EntryMapper.Write(e, w, 1024);
        Assert.Equal("<27>1 2023-11-14T22:13:20.123456Z worker-1 kubelet 42 - [journal@32473 unit=\"kubelet.service\" cursor=\"s=1;i=2\"] ready \"now\"",
            Encoding.UTF8.GetString(w.WrittenSpan));
        Assert.Equal("s=1;i=2", e.Cursor);
        Assert.Equal(3, e.Severity);
    }

    [Theory]
    [InlineData("5")]
    [InlineData("007")]
    [InlineData("")]
    [InlineData("+5")]
    [InlineData("-5")]
    [InlineData(" 5")]
    [InlineData("5 ")]
    [InlineData("5\0\0")]
    [InlineData("\0")]
    [InlineData("5\05")]
    [InlineData("9223372036854775807")]
    [InlineData("9223372036854775808")]
    [InlineData("1e3")]
    [InlineData("٥")]
    public void NumbersAreRead_AsLongTryParseReadsTheText(string text)
    {
        var expected = long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var v);
        Assert.Equal(expected, JournalEntry.TryParseNumber(Encoding.UTF8.GetBytes(text), out var actual));
        Assert.Equal(expected ? v : 0, actual);
    }

    [Fact]
    public void ReadingAndWritingAnEntry_AllocatesNothing()
    {
        var e = new JournalEntry();
        var w = new ArrayBufferWriter<byte>(4096);
        var sink = (IJournalFieldSink)e;
        var filter = new EntryFilter(new JournalOptions { Units = ["kubelet.service"] });
        void One()
        {
            e.Begin(1_700_000_000_000_000);
            sink.Field("__CURSOR"u8, "s=0123456789abcdef;i=1a;b=fedcba9876543210;m=2b;t=5f0;x=77"u8);
            sink.Field("MESSAGE"u8, "Started kubelet: The Kubernetes Node Agent. \"quoted\" and ]"u8);
            sink.Field("PRIORITY"u8, "6"u8);
            sink.Field("_SYSTEMD_UNIT"u8, "kubelet.service"u8);
            sink.Field("_HOSTNAME"u8, "worker-1"u8);
            sink.Field("SYSLOG_IDENTIFIER"u8, "kubelet"u8);
            sink.Field("_PID"u8, "4242"u8);
            sink.Field("_BOOT_ID"u8, "0123456789abcdef0123456789abcdef"u8);
            Assert.True(filter.Accepts(e));
            w.ResetWrittenCount();
            EntryMapper.Write(e, w, 64 * 1024);
        }

        for (var i = 0; i < 100; i++)
        {
            One(); // warm up
        }

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 10_000; i++)
        {
            One();
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
