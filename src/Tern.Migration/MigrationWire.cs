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
//   'C' started   the guest runs on the target; 7 x i64: the target's Stopwatch timestamps of
//                 the switchover (state read, state loaded, end read, ready sent, the guest's
//                 thread waiting for go, go read, started sent), which the source puts on its
//                 own timeline when the clocks agree (same host); an empty 'C' is valid too
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
        Head(head, type, payload.Span);
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
        if (payload.Length > 64 * 1024)
        {
            Span<byte> head = stackalloc byte[9];
            Head(head, type, payload);
            s.Write(head);
            s.Write(payload);
            return;
        }
        var buffer = new MemoryStream(9 + payload.Length);
        Append(buffer, type, payload);
        s.Write(buffer.GetBuffer(), 0, (int)buffer.Length);
    }

    /// <summary>Appends a record to <paramref name="buffer"/>, to send several in one write.</summary>
    public static void Append(MemoryStream buffer, byte type, ReadOnlySpan<byte> payload)
    {
        Span<byte> head = stackalloc byte[9];
        Head(head, type, payload);
        buffer.Write(head);
        buffer.Write(payload);
    }

    // A record's 9-byte head: type, payload length, CRC-32 of the payload.
    private static void Head(Span<byte> head, byte type, ReadOnlySpan<byte> payload)
    {
        head[0] = type;
        BinaryPrimitives.WriteUInt32LittleEndian(head[1..], (uint)payload.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(head[5..], Crc32.HashToUInt32(payload));
    }

    /// <summary>A receive buffer that grows to the largest record read and is reused (no allocation per record).</summary>
    public sealed class Buffer
    {
        public byte[] Head { get; } = new byte[9];

        public byte[] Bytes { get; private set; }

        /// <summary>A buffer that starts with room for <paramref name="initial"/> bytes.</summary>
        public Buffer(int initial = 64 * 1024) => Bytes = new byte[initial];

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
        var buffer = new Buffer(0);
        var (type, payload) = ReadSync(s, buffer, timeout, spin: true, ct);
        return (type, payload.ToArray());
    }

    /// <summary>
    /// As <see cref="ReadSync(Stream, TimeSpan, CancellationToken)"/>, into <paramref name="buffer"/>
    /// (valid until the next read into it); <paramref name="spin"/> says whether to poll the
    /// socket for a while before blocking (when the answer should come within milliseconds).
    /// </summary>
    public static (byte Type, Memory<byte> Payload) ReadSync(Stream s, Buffer buffer, TimeSpan timeout, bool spin, CancellationToken ct)
    {
        var expiry = new Expiry(s);
        using var timer = timeout == Timeout.InfiniteTimeSpan ? null : new Timer(static e => ((Expiry)e!).Expire(), expiry, timeout, Timeout.InfiniteTimeSpan);
        using var cancel = ct.UnsafeRegister(static e => ((Expiry)e!).Close(), expiry);
        bool inside = false;
        try
        {
            WaitForData(s, spin, expiry);
            var head = buffer.Head;
            s.ReadExactly(head);
            inside = true;
            uint length = BinaryPrimitives.ReadUInt32LittleEndian(head.AsSpan(1));
            if (length > MaxRecord)
                throw new MigrationFailedException($"a record of {length} bytes is larger than any the protocol sends");
            var payload = buffer.Ensure((int)length).AsMemory(0, (int)length);
            s.ReadExactly(payload.Span);
            if (Crc32.HashToUInt32(payload.Span) != BinaryPrimitives.ReadUInt32LittleEndian(head.AsSpan(5)))
                throw new MigrationFailedException($"record '{(char)head[0]}' is corrupted (checksum mismatch)");
            return (head[0], payload);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or System.Net.Sockets.SocketException or OperationCanceledException)
        {
            ct.ThrowIfCancellationRequested();
            if (expiry.Expired)
                throw new TimeoutException($"no answer within {timeout.TotalSeconds:0.###} s", e);
            if (e is EndOfStreamException)
                throw new MigrationFailedException(inside ? "the migration stream ended inside a record" : "the migration stream ended before the end record");
            throw;
        }
    }

    /// <summary>
    /// How long a switchover's waiting thread spins on the socket before it sleeps in poll(2)
    /// (TERN_MIGRATION_SPIN_US overrides it, 0 turns spinning off).
    /// </summary>
    public static readonly TimeSpan SpinLimit = TimeSpan.FromMicroseconds(
        int.TryParse(Environment.GetEnvironmentVariable("TERN_MIGRATION_SPIN_US"), out int us) && us >= 0 ? us : 10_000);

    // Whether to wait in poll(2) (TERN_MIGRATION_POLL=0: the socket's own blocking read, to compare).
    private static readonly bool PollForData = Environment.GetEnvironmentVariable("TERN_MIGRATION_POLL") != "0";

    // A poll(2) this long at most, so that a timeout or a cancellation (which close the stream)
    // is seen soon: closing a socket does not end a poll already waiting on it.
    private const int PollSliceMicros = 20_000;

    // Waits until the socket under s has data (or an error, or the end) to read. A blocked read
    // on a .NET socket that has been used asynchronously sleeps until the runtime's I/O thread
    // sees the data and wakes it: two wake-ups, each of which may wait for a core. poll(2) is
    // woken by the kernel itself, one wake-up; and before it, a thread that spins for a moment
    // sees a quick answer (the switchover's are a fraction of a millisecond apart) with none.
    private static void WaitForData(Stream s, bool spin, Expiry expiry)
    {
        if (s is not System.Net.Sockets.NetworkStream ns)
            return;
        try
        {
            if (spin && SpinLimit > TimeSpan.Zero)
            {
                long until = System.Diagnostics.Stopwatch.GetTimestamp() + (long)(SpinLimit.TotalSeconds * System.Diagnostics.Stopwatch.Frequency);
                // Yielding between polls: a thread that is ready on this core (the one the answer
                // may wait for) runs at once, and with none the yield returns at once.
                while (!ns.DataAvailable)
                {
                    if (System.Diagnostics.Stopwatch.GetTimestamp() >= until)
                        break;
                    Thread.Yield();
                }
            }
            if (!PollForData)
                return;
            var socket = ns.Socket;
            while (!expiry.Closed && !socket.Poll(PollSliceMicros, System.Net.Sockets.SelectMode.SelectRead))
            {
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or System.Net.Sockets.SocketException)
        {
            // the read that follows reports it
        }
    }

    private sealed class Expiry(Stream s)
    {
        public volatile bool Expired;
        public volatile bool Closed;

        public void Expire()
        {
            Expired = true;
            Close();
        }

        public void Close()
        {
            Closed = true;
            s.Dispose();
        }
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
