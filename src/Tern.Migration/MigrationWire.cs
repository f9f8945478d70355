// The live-migration stream. It carries the same machine state as a snapshot file (see
// docs/snapshot-format.md: SHAP and STAT are encoded by the same StateCodec), but RAM goes in
// rounds while the guest runs, each page raw, LZ4-compressed or an LZ4-compressed XOR against
// the copy sent before, and runs of zero pages as ranges. Every record carries a CRC32C, so a
// corrupted record is refused rather than loaded.
//
//   record  u8 type | u32 payload length | u32 CRC32C of the payload | payload
//   'H' hello     "TERNMIG2" (the protocol version) | SHAP payload
//   'P' pages     u32 entry count, then per entry: u32 page index | u8 encoding | ...
//                   encoding 0 (zero run): u32 n, pages index .. index+n-1 are all zero
//                   encoding 1 raw, 2 LZ4, 3 XOR+LZ4: u32 length | bytes
//   'R' round end u32 round number (0 after round 0); the target answers 'K'
//   'S' state     STAT payload (harts, devices, clock)
//   'E' end       (empty): the target loads the state and answers 'Y'
//   'G' go        (empty): the source has let go of the guest; the target starts it
//   'M' missing   post-copy, before 'S': the dirty bitmap (u64 words) of pages still to come
//   'F' finished  post-copy, after 'G' and the pushed pages: every missing page has been sent
//   target to source, post-copy: 'Q' u32 page index (a page the guest touched), 'F' (all here)
//   target to source:
//   'O' prepared  (empty): the target built an empty machine of that shape
//   'K' applied   u32 round number: the target has applied that round (flow control)
//   'Y' ready     u32 microseconds applying the last pages | u32 microseconds loading the state
//   'C' started   (empty): the guest runs on the target
//   'N' refused   UTF-8 reason, at any point before 'C'
//
// Version 1 ("TERNMIG1") sent a 5-byte zero marker per zero page and an empty 'Y'; a target of
// this version refuses its hello, naming both versions.
//
// Two-phase switchover: the target starts the guest only on 'G', and the source sends 'G'
// only after 'Y'. Before 'G' the source owns the guest (any failure resumes it there); from
// 'G' on the target owns it. A failure between 'G' and 'C' leaves the source unable to tell
// whether 'G' arrived: the migration is in doubt, the source keeps its copy paused and the
// caller settles it by asking the target (MigrationSource.ResolveInDoubtAsync).
using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;

namespace Tern.Migration;

/// <summary>A migration that did not complete; the guest still runs on the source (unless it is a <see cref="MigrationInDoubtException"/>).</summary>
public class MigrationFailedException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// The switchover broke after the source sent 'go' and before the target confirmed: the guest
/// runs on the target if 'go' arrived, else nowhere. The source keeps its copy paused; settle it
/// with <see cref="MigrationSource.ResolveInDoubtAsync"/> once the target has said whether it runs the guest.
/// </summary>
public sealed class MigrationInDoubtException(string message, Exception? inner = null) : MigrationFailedException(message, inner);

internal static class MigrationWire
{
    public const byte Hello = (byte)'H', Pages = (byte)'P', RoundEnd = (byte)'R', State = (byte)'S', End = (byte)'E';
    public const byte Go = (byte)'G', Missing = (byte)'M', Finished = (byte)'F', Request = (byte)'Q';
    public const byte RoundApplied = (byte)'K';
    public const byte Prepared = (byte)'O', Ready = (byte)'Y', Started = (byte)'C', Refused = (byte)'N';
    public const int MaxRecord = 64 << 20;
    public const int Version = 2;
    public static readonly byte[] Magic = "TERNMIG2"u8.ToArray();

    public const byte EncZero = 0, EncRaw = 1, EncLz4 = 2, EncXorLz4 = 3;

    // Small records go out in one write, so a switchover's last records and the acknowledgement
    // are never split into packets that wait on each other.
    public static async Task WriteAsync(Stream s, byte type, ReadOnlyMemory<byte> payload, CancellationToken ct)
    {
        bool single = payload.Length <= 64 * 1024;
        var head = new byte[9 + (single ? payload.Length : 0)];
        head[0] = type;
        BinaryPrimitives.WriteUInt32LittleEndian(head.AsSpan(1), (uint)payload.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(head.AsSpan(5), Crc32.HashToUInt32(payload.Span));
        if (single)
        {
            payload.CopyTo(head.AsMemory(9));
            await s.WriteAsync(head, ct).ConfigureAwait(false);
            return;
        }
        await s.WriteAsync(head, ct).ConfigureAwait(false);
        await s.WriteAsync(payload, ct).ConfigureAwait(false);
    }

    /// <summary>Writes a small record synchronously (from a vCPU thread that waits for a page).</summary>
    public static void WriteSync(Stream s, byte type, ReadOnlySpan<byte> payload)
    {
        var buffer = new MemoryStream(9 + payload.Length);
        Append(buffer, type, payload);
        s.Write(buffer.GetBuffer(), 0, (int)buffer.Length);
    }

    /// <summary>Appends a record to <paramref name="buffer"/>, to send several in one write.</summary>
    public static void Append(MemoryStream buffer, byte type, ReadOnlySpan<byte> payload)
    {
        Span<byte> head = stackalloc byte[9];
        head[0] = type;
        BinaryPrimitives.WriteUInt32LittleEndian(head[1..], (uint)payload.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(head[5..], Crc32.HashToUInt32(payload));
        buffer.Write(head);
        buffer.Write(payload);
    }

    /// <summary>A receive buffer that grows to the largest record read and is reused (no allocation per record).</summary>
    public sealed class Buffer
    {
        public byte[] Head { get; } = new byte[9];

        public byte[] Bytes { get; private set; } = new byte[64 * 1024];

        public byte[] Ensure(int length)
        {
            if (Bytes.Length < length)
                Bytes = new byte[Math.Max(length, Bytes.Length * 2)];
            return Bytes;
        }
    }

    /// <summary>Reads a record into <paramref name="buffer"/>; the payload is valid until the next read into it.</summary>
    public static async Task<(byte Type, Memory<byte> Payload)> ReadAsync(Stream s, Buffer buffer, CancellationToken ct)
    {
        var head = buffer.Head;
        try
        {
            await s.ReadExactlyAsync(head, ct).ConfigureAwait(false);
        }
        catch (EndOfStreamException)
        {
            throw new MigrationFailedException("the migration stream ended before the end record");
        }
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(head.AsSpan(1));
        if (length > MaxRecord)
            throw new MigrationFailedException($"a record of {length} bytes is larger than any the protocol sends");
        var payload = buffer.Ensure((int)length).AsMemory(0, (int)length);
        try
        {
            await s.ReadExactlyAsync(payload, ct).ConfigureAwait(false);
        }
        catch (EndOfStreamException)
        {
            throw new MigrationFailedException("the migration stream ended inside a record");
        }
        if (Crc32.HashToUInt32(payload.Span) != BinaryPrimitives.ReadUInt32LittleEndian(head.AsSpan(5)))
            throw new MigrationFailedException($"record '{(char)head[0]}' is corrupted (checksum mismatch)");
        return (head[0], payload);
    }

    public static async Task<(byte Type, byte[] Payload)> ReadAsync(Stream s, CancellationToken ct)
    {
        var head = new byte[9];
        try
        {
            await s.ReadExactlyAsync(head, ct).ConfigureAwait(false);
        }
        catch (EndOfStreamException)
        {
            throw new MigrationFailedException("the migration stream ended before the end record");
        }
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(head.AsSpan(1));
        if (length > MaxRecord)
            throw new MigrationFailedException($"a record of {length} bytes is larger than any the protocol sends");
        var payload = new byte[length];
        try
        {
            await s.ReadExactlyAsync(payload, ct).ConfigureAwait(false);
        }
        catch (EndOfStreamException)
        {
            throw new MigrationFailedException("the migration stream ended inside a record");
        }
        if (Crc32.HashToUInt32(payload) != BinaryPrimitives.ReadUInt32LittleEndian(head.AsSpan(5)))
            throw new MigrationFailedException($"record '{(char)head[0]}' is corrupted (checksum mismatch)");
        return (head[0], payload);
    }

    /// <summary>
    /// Reads a record on the calling thread, which blocks until it arrives: the switchover's last
    /// answers wake the thread that acts on them, with no hop through the I/O completion and
    /// thread pool threads. After <paramref name="timeout"/>, or on <paramref name="ct"/>, the
    /// stream is closed to end the wait (it is of no further use then).
    /// </summary>
    public static (byte Type, byte[] Payload) ReadSync(Stream s, TimeSpan timeout, CancellationToken ct)
    {
        var expiry = new Expiry(s);
        using var timer = new Timer(static e => ((Expiry)e!).Expire(), expiry, timeout, Timeout.InfiniteTimeSpan);
        using var cancel = ct.UnsafeRegister(static e => ((Expiry)e!).Close(), expiry);
        try
        {
            var head = new byte[9];
            s.ReadExactly(head);
            uint length = BinaryPrimitives.ReadUInt32LittleEndian(head.AsSpan(1));
            if (length > MaxRecord)
                throw new MigrationFailedException($"a record of {length} bytes is larger than any the protocol sends");
            var payload = new byte[length];
            s.ReadExactly(payload);
            if (Crc32.HashToUInt32(payload) != BinaryPrimitives.ReadUInt32LittleEndian(head.AsSpan(5)))
                throw new MigrationFailedException($"record '{(char)head[0]}' is corrupted (checksum mismatch)");
            return (head[0], payload);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or System.Net.Sockets.SocketException or OperationCanceledException)
        {
            ct.ThrowIfCancellationRequested();
            if (expiry.Expired)
                throw new TimeoutException($"no answer within {timeout.TotalSeconds:0.###} s", e);
            if (e is EndOfStreamException)
                throw new MigrationFailedException("the migration stream ended before the end record");
            throw;
        }
    }

    private sealed class Expiry(Stream s)
    {
        public volatile bool Expired;

        public void Expire()
        {
            Expired = true;
            Close();
        }

        public void Close() => s.Dispose();
    }

    public static byte[] RefusalPayload(string reason) => Encoding.UTF8.GetBytes(reason);

    private static class Crc32
    {
        public static uint HashToUInt32(ReadOnlySpan<byte> data)
        {
            var crc = new System.IO.Hashing.Crc32(Crc32ParameterSet.Crc32C);
            crc.Append(data);
            return crc.GetCurrentHashAsUInt32();
        }
    }
}
