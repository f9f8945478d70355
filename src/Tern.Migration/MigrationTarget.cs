// The receiving side of a live migration: builds an empty machine of the sender's shape
// (with the same devices, attached by the caller), fills its RAM from the page rounds, loads
// the state at the end, starts the guest on a thread of its own and acknowledges. Anything
// wrong in the stream is refused with a reason and the half-built machine is thrown away.
using System.Buffers.Binary;
using System.Text;
using K4os.Compression.LZ4;
using Tern.Machine;
using Tern.Machine.Snapshot;
using Tern.Riscv;

namespace Tern.Migration;

/// <summary>Receives a migrating guest.</summary>
public static class MigrationTarget
{
    /// <summary>
    /// Receives a guest from <paramref name="channel"/>. <paramref name="build"/> makes the empty
    /// machine for the sender's shape, with the given console stream and the same devices the
    /// guest had. <paramref name="beforeStart"/> (e.g. subscribing to the console) runs just before
    /// the guest starts. Returns the guest, already running on its own thread.
    /// </summary>
    public static async Task<MachineThread> ReceiveAsync(Stream channel, Func<MachineShape, Stream, VirtMachine> build, string name, Action<MachineThread>? beforeStart = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(channel);
        ArgumentNullException.ThrowIfNull(build);
        MachineThread? guest = null;
        try
        {
            var (type, payload) = await MigrationWire.ReadAsync(channel, ct).ConfigureAwait(false);
            if (type != MigrationWire.Hello || payload.Length < 8 || !payload.AsSpan(0, 8).SequenceEqual(MigrationWire.Magic))
                throw new MigrationFailedException("the stream does not start with a Tern migration hello");
            var reader = new StateReader(payload.AsMemory(8), "hello");
            var shape = StateCodec.ReadShape(reader);
            reader.End();
            guest = new MachineThread(console => build(shape, console), name);
            var memory = guest.Machine.Memory;
            var page = new byte[GuestMemory.PageSize];
            while (true)
            {
                (type, payload) = await MigrationWire.ReadAsync(channel, ct).ConfigureAwait(false);
                switch (type)
                {
                    case MigrationWire.Pages:
                        ApplyPages(memory, payload, page);
                        break;
                    case MigrationWire.RoundEnd:
                        break;
                    case MigrationWire.State:
                        var r = new StateReader(payload, "state");
                        var state = StateCodec.Read(r, shape);
                        r.End();
                        try
                        {
                            guest.Machine.RestoreState(state);
                        }
                        catch (ArgumentException e)
                        {
                            throw new MigrationFailedException(e.Message, e);
                        }
                        break;
                    case MigrationWire.End:
                        beforeStart?.Invoke(guest);
                        guest.Start();
                        await MigrationWire.WriteAsync(channel, MigrationWire.Accepted, Array.Empty<byte>(), ct).ConfigureAwait(false);
                        await channel.FlushAsync(ct).ConfigureAwait(false);
                        return guest;
                    default:
                        throw new MigrationFailedException($"unexpected record '{(char)type}' in the migration stream");
                }
            }
        }
        catch (Exception e) when (e is MigrationFailedException or InvalidSnapshotException)
        {
            guest?.Dispose();
            await TryRefuse(channel, e.Message).ConfigureAwait(false);
            throw e as MigrationFailedException ?? new MigrationFailedException(e.Message, e);
        }
        catch
        {
            guest?.Dispose();
            throw;
        }
    }

    private static async Task TryRefuse(Stream channel, string reason)
    {
        try
        {
            await MigrationWire.WriteAsync(channel, MigrationWire.Refused, MigrationWire.RefusalPayload(reason), CancellationToken.None).ConfigureAwait(false);
            await channel.FlushAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or System.Net.Sockets.SocketException)
        {
            // the source is gone; it will resume the guest on its own
        }
    }

    private static void ApplyPages(GuestMemory memory, byte[] payload, byte[] page)
    {
        var span = payload.AsSpan();
        if (span.Length < 4)
            throw new MigrationFailedException("page record truncated");
        uint count = BinaryPrimitives.ReadUInt32LittleEndian(span);
        int pos = 4;
        for (uint i = 0; i < count; i++)
        {
            if (span.Length - pos < 5)
                throw new MigrationFailedException("page record truncated");
            uint index = BinaryPrimitives.ReadUInt32LittleEndian(span[pos..]);
            byte encoding = span[pos + 4];
            pos += 5;
            if (index >= (uint)memory.PageCount)
                throw new MigrationFailedException($"page {index} lies outside the guest's {memory.PageCount} pages");
            ulong address = memory.Base + ((ulong)index * GuestMemory.PageSize);
            if (encoding == MigrationWire.EncZero)
            {
                memory.Span(address, GuestMemory.PageSize).Clear();
                continue;
            }
            if (span.Length - pos < 4)
                throw new MigrationFailedException("page record truncated");
            int length = (int)BinaryPrimitives.ReadUInt32LittleEndian(span[pos..]);
            pos += 4;
            if (length < 0 || length > span.Length - pos)
                throw new MigrationFailedException("page record truncated");
            var body = span.Slice(pos, length);
            pos += length;
            var target = memory.Span(address, GuestMemory.PageSize);
            switch (encoding)
            {
                case MigrationWire.EncRaw:
                    if (length != GuestMemory.PageSize)
                        throw new MigrationFailedException($"raw page {index} has {length} bytes");
                    body.CopyTo(target);
                    break;
                case MigrationWire.EncLz4:
                    if (LZ4Codec.Decode(body, target) != GuestMemory.PageSize)
                        throw new MigrationFailedException($"compressed page {index} does not decode to a page");
                    break;
                case MigrationWire.EncXorLz4:
                    if (LZ4Codec.Decode(body, page) != GuestMemory.PageSize)
                        throw new MigrationFailedException($"delta page {index} does not decode to a page");
                    for (int b = 0; b < GuestMemory.PageSize; b++)
                        target[b] ^= page[b];
                    break;
                default:
                    throw new MigrationFailedException($"page {index} has unknown encoding {encoding}");
            }
        }
        if (pos != span.Length)
            throw new MigrationFailedException("page record has trailing bytes");
    }
}
