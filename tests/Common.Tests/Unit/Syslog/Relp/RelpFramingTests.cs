using System.Text;
using Toolforge.Agents.Common.Syslog.Relp;

namespace Toolforge.Agents.Common.Tests;

public sealed class RelpFramingTests
{
    /// <summary>A stream that hands out at most a few bytes per read, as TCP may.</summary>
    private sealed class Trickle(byte[] data, int chunk) : Stream
    {
        private int _pos;

        public override int Read(byte[] buffer, int offset, int count)
        {
            var n = Math.Min(Math.Min(chunk, count), data.Length - _pos);
            Array.Copy(data, _pos, buffer, offset, n);
            _pos += n;
            return n;
        }

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => data.Length;

        public override long Position { get => _pos; set => throw new NotSupportedException(); }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    [Fact]
    public void Frame_IsTxnrCommandLengthDataLf()
    {
        Assert.Equal("7 syslog 5 hello\n", Encoding.ASCII.GetString(RelpFrameWriter.Frame(7, "syslog", "hello"u8)));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(4096)]
    public async Task Reader_ReadsWhatTheWriterWrote_WhateverTheChunking(int chunk)
    {
        var bytes = RelpFrameWriter.Frame(1, "rsp", "200 OK"u8).Concat(RelpFrameWriter.Frame(2, "rsp", "200 OK\nmulti\nline"u8))
            .Concat(Encoding.ASCII.GetBytes("3 serverclose 0\n")).ToArray();
        var reader = new RelpFrameReader(new Trickle(bytes, chunk));
        Assert.Equal(new RelpFrame(1, "rsp", "200 OK"), await reader.ReadAsync(CancellationToken.None));
        Assert.Equal(new RelpFrame(2, "rsp", "200 OK\nmulti\nline"), await reader.ReadAsync(CancellationToken.None));
        Assert.Equal(new RelpFrame(3, "serverclose", string.Empty), await reader.ReadAsync(CancellationToken.None));
        Assert.Null(await reader.ReadAsync(CancellationToken.None)); // clean end between frames
    }

    [Theory]
    [InlineData("1 rsp 10 short\n")]
    [InlineData("1 rsp 2 okX")]
    [InlineData("123456789012345678901234567890123456 rsp 0\n")]
    [InlineData("x rsp 0\n")]
    public async Task ABrokenFrame_IsAnError_NotAFrame(string wire)
    {
        var reader = new RelpFrameReader(new MemoryStream(Encoding.ASCII.GetBytes(wire)));
        await Assert.ThrowsAnyAsync<Exception>(() => reader.ReadAsync(CancellationToken.None));
    }
}
