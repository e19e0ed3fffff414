using System.Text;
using Toolforge.Agents.Common.Syslog;

namespace Toolforge.Agents.Common.Tests;

public sealed class Rfc5424Tests
{
    private static string Text(SyslogMessage m, int max = int.MaxValue) => Encoding.UTF8.GetString(Rfc5424.ToBytes(m, max));

    [Fact]
    public void AFullMessage_HasTheRfcLayout()
    {
        var m = new SyslogMessage
        {
            Facility = 3, Severity = 4, TimestampMicros = 1_700_000_000_123_456, Hostname = "worker-1", AppName = "kubelet", ProcId = "42", MsgId = "ID7",
            Message = "hello",
        };
        m.StructuredData.Add(new SdElement("journal@32473", [new("unit", "kubelet.service")]));
        Assert.Equal("<28>1 2023-11-14T22:13:20.123456Z worker-1 kubelet 42 ID7 [journal@32473 unit=\"kubelet.service\"] hello", Text(m));
    }

    [Fact]
    public void MissingFields_AreTheNilValue_AndHeaderFieldsAreCutAndPrintable()
    {
        var m = new SyslogMessage { Hostname = "bad host\u001b", AppName = new string('a', 100) };
        var text = Text(m);
        Assert.StartsWith("<13>1 - ", text, StringComparison.Ordinal);
        var fields = text.Split(' ');
        Assert.DoesNotContain('\u001b', text);
        Assert.Equal(Rfc5424.MaxAppName, fields[3].Length);
        Assert.EndsWith(" - - -", text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("wörker", "w_rker")]         // one code unit, two bytes: one '_'
    [InlineData("a😀b", "a__b")]             // a surrogate pair: two code units
    [InlineData("tab\there", "tab_here")]
    public void HeaderFields_HaveOneCharacterPerCodeUnit_PrintableAsciiOrUnderscore(string host, string expected)
    {
        var text = Text(new SyslogMessage { Hostname = host });
        Assert.Equal(expected, text.Split(' ')[2]);
    }

    [Fact]
    public void ALoneSurrogate_IsOneCharacter() // not in InlineData: metadata strings cannot hold one
    {
        var text = Text(new SyslogMessage { Hostname = "a" + '\ud800' + "b" });
        Assert.Equal("a_b", text.Split(' ')[2]);
    }

    [Fact]
    public void AHeaderFieldFromInvalidUtf8_CountsEachBadSequenceAsOneCharacter()
    {
        var w = new System.Buffers.ArrayBufferWriter<byte>();
        Rfc5424.WriteHeaderField(w, [(byte)'a', 0xff, 0xe2, 0x82, (byte)'b', 0xc3], 255);
        Assert.Equal(Encoding.UTF8.GetString([(byte)'a', 0xff, 0xe2, 0x82, (byte)'b', 0xc3]).Length, w.WrittenCount); // what the text would have
        Assert.Equal("a__b_", Encoding.ASCII.GetString(w.WrittenSpan));
    }

    [Fact]
    public void StructuredDataValues_AreEscaped()
    {
        var m = new SyslogMessage { Message = "m" };
        m.StructuredData.Add(new SdElement("x@1", [new("k", "a\"b\\c]d")]));
        Assert.Contains("[x@1 k=\"a\\\"b\\\\c\\]d\"]", Text(m), StringComparison.Ordinal);
    }

    [Fact]
    public void ALongMessage_IsCutAtACharacterBoundary_WithAMarkerThatSaysHowMuch()
    {
        var message = string.Concat(Enumerable.Repeat("é", 1000)); // 2 bytes each
        var bytes = Rfc5424.ToBytes(new SyslogMessage { Message = message }, 1024);
        var text = Encoding.UTF8.GetString(bytes);
        var msg = text.Split(' ', 8)[7]; // PRI+VERSION, TIMESTAMP, HOSTNAME, APP-NAME, PROCID, MSGID, SD, MSG
        Assert.True(Encoding.UTF8.GetByteCount(msg) <= 1024);
        Assert.Matches(@"^é+\.\.\.\[truncated \d+ bytes\]$", msg);
        var cut = int.Parse(System.Text.RegularExpressions.Regex.Match(msg, @"truncated (\d+)").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(2000 - Encoding.UTF8.GetByteCount(msg[..msg.IndexOf("...", StringComparison.Ordinal)]), cut);
    }

    [Fact]
    public void OctetCounting_PrefixesTheLength()
    {
        var framed = Encoding.ASCII.GetString(OctetCounting.Frame("<13>1 - - - - - hi"u8));
        Assert.Equal("18 <13>1 - - - - - hi", framed);
    }
}
