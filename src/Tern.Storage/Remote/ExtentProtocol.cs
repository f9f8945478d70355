// The wire format between RemotePhysicalVolumeIo and ExtentServer (docs/cluster-storage.md
// describes it for people). All integers are little-endian.
//
//   hello (client → server, 80 bytes): "TERNEXT1", token[32], pv id[16], session id[16], attempt u64
//   reply (server → client): status u8, pv length i64, message length u16, message (UTF-8)
//   then frames both ways: payload length u32, payload (at most MaxFrame bytes)
//   request  = op u8, flags u8, id u32, offset i64, length u32,
//              [writer lv id[16], generation i64 when flags & HasWriter], [data[length] for a write]
//   response = id u32, status u8, body length u32, body
//              (read: the data; fenced: the owning generation i64; error: a UTF-8 message)
//
// A frame carries any number of requests (or responses); responses may come in any order.
using System.Buffers.Binary;
using System.Text;

namespace Tern.Storage.Remote;

/// <summary>Constants and codecs of the extent wire protocol.</summary>
internal static class ExtentProtocol
{
    public static ReadOnlySpan<byte> Magic => "TERNEXT1"u8;

    public const int TokenBytes = 32;
    public const int HelloBytes = 8 + TokenBytes + 16 + 16 + 8;

    /// <summary>Most data one request carries or asks for; bigger I/O is split into pieces.</summary>
    public const int MaxPiece = 512 << 10;

    /// <summary>Most request (or response) data batched into one frame.</summary>
    public const int MaxBatchBytes = 1 << 20;

    /// <summary>Largest frame payload either side accepts: a batch plus room for headers.</summary>
    public const int MaxFrame = MaxBatchBytes + (64 << 10);

    public const int RequestHeader = 18;
    public const int WriterBytes = 24;
    public const int ResponseHeader = 9;

    public const byte OpRead = 1, OpWrite = 2, OpFlush = 3;
    public const byte FlagHasWriter = 1;

    public const byte StatusOk = 0, StatusFenced = 1, StatusError = 2;

    public const byte HelloOk = 0, HelloBadToken = 1, HelloUnknownPv = 2, HelloSuperseded = 3;

    public static void WriteHello(Span<byte> b, ReadOnlySpan<byte> token, Guid pv, Guid session, ulong attempt)
    {
        Magic.CopyTo(b);
        token.CopyTo(b[8..]);
        pv.TryWriteBytes(b.Slice(8 + TokenBytes, 16));
        session.TryWriteBytes(b.Slice(8 + TokenBytes + 16, 16));
        BinaryPrimitives.WriteUInt64LittleEndian(b[(8 + TokenBytes + 32)..], attempt);
    }

    public static byte[] HelloReply(byte status, long length, string message)
    {
        int n = Encoding.UTF8.GetByteCount(message);
        var b = new byte[11 + n];
        b[0] = status;
        BinaryPrimitives.WriteInt64LittleEndian(b.AsSpan(1), length);
        BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(9), (ushort)n);
        Encoding.UTF8.GetBytes(message, b.AsSpan(11));
        return b;
    }

    /// <summary>Writes a request header (and the writer when there is one); returns its size.</summary>
    public static int WriteRequest(Span<byte> b, byte op, uint id, long offset, int length, WriterId? writer)
    {
        b[0] = op;
        b[1] = writer is null ? (byte)0 : FlagHasWriter;
        BinaryPrimitives.WriteUInt32LittleEndian(b[2..], id);
        BinaryPrimitives.WriteInt64LittleEndian(b[6..], offset);
        BinaryPrimitives.WriteUInt32LittleEndian(b[14..], (uint)length);
        if (writer is not { } w)
            return RequestHeader;
        w.LvId.TryWriteBytes(b.Slice(RequestHeader, 16));
        BinaryPrimitives.WriteInt64LittleEndian(b[(RequestHeader + 16)..], w.Generation);
        return RequestHeader + WriterBytes;
    }

    public static void WriteResponseHeader(Span<byte> b, uint id, byte status, int length)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(b, id);
        b[4] = status;
        BinaryPrimitives.WriteUInt32LittleEndian(b[5..], (uint)length);
    }

    public static string Seconds(TimeSpan t) => t.TotalSeconds >= 1 && t.TotalSeconds == Math.Floor(t.TotalSeconds) ? $"{t.TotalSeconds:0} s" : $"{t.TotalMilliseconds:0} ms";
}
