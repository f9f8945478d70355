// The receiving side of a live migration: builds an empty machine of the sender's shape
// (with the same devices, attached by the caller) and says so, fills its RAM from the page
// rounds, loads the state at the end and says ready; it starts the guest only when the
// source says go, then confirms. Anything wrong before go is refused with a reason and the
// half-built machine is thrown away; from go on, the guest is this side's. In post-copy the
// guest starts with the pages it dirtied last still on the source: a touch fetches one, and
// the pages the source pushes meanwhile fill the rest.
using System.Buffers.Binary;
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
    /// guest had; if it throws, the target refuses with its message. <paramref name="beforeStart"/>
    /// (e.g. subscribing to the console) runs just before the guest starts. Returns the guest,
    /// running on its own thread (in post-copy, once every page has arrived).
    /// The wait for the source's go after ready is bounded by 30 s.
    /// </summary>
    public static Task<MachineThread> ReceiveAsync(Stream channel, Func<MachineShape, Stream, VirtMachine> build, string name, Action<MachineThread>? beforeStart = null, CancellationToken ct = default) =>
        ReceiveAsync(channel, build, name, beforeStart, TimeSpan.FromSeconds(30), ct);

    /// <summary>
    /// As <see cref="ReceiveAsync(Stream, Func{MachineShape, Stream, VirtMachine}, string, Action{MachineThread}?, CancellationToken)"/>,
    /// with <paramref name="decisionTimeout"/> bounding the wait for the source's go after ready.
    /// </summary>
    public static async Task<MachineThread> ReceiveAsync(Stream channel, Func<MachineShape, Stream, VirtMachine> build, string name, Action<MachineThread>? beforeStart, TimeSpan decisionTimeout, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(channel);
        ArgumentNullException.ThrowIfNull(build);
        // The first migration of a process waits for the rehearsal (the source counts it in setup time).
        MigrationWarmUp.MigrationBegins();
        await MigrationWarmUp.EnsureAsync().WaitAsync(ct).ConfigureAwait(false);
        return await ReceiveCoreAsync(channel, build, name, beforeStart, decisionTimeout, ct).ConfigureAwait(false);
    }

    // ReceiveAsync without the rehearsal (which uses it).
    internal static async Task<MachineThread> ReceiveCoreAsync(Stream channel, Func<MachineShape, Stream, VirtMachine> build, string name, Action<MachineThread>? beforeStart, TimeSpan decisionTimeout, CancellationToken ct)
    {
        MachineThread? guest = null;
        bool owned = false;
        try
        {
            var (type, payload) = await MigrationWire.ReadAsync(channel, ct).ConfigureAwait(false);
            if (type != MigrationWire.Hello || payload.Length < 8 || !payload.AsSpan(0, 7).SequenceEqual(MigrationWire.Magic.AsSpan(0, 7)))
                throw new MigrationFailedException("the stream does not start with a Tern migration hello");
            if (!payload.AsSpan(0, 8).SequenceEqual(MigrationWire.Magic))
                throw new MigrationFailedException($"the source speaks migration protocol version {(char)payload[7]} ({System.Text.Encoding.ASCII.GetString(payload, 0, 8)}); this target speaks version {MigrationWire.Version}");
            var reader = new StateReader(payload.AsMemory(8), "hello");
            var shape = StateCodec.ReadShape(reader);
            reader.End();
            try
            {
                guest = new MachineThread(console => build(shape, console), name);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                throw new MigrationFailedException($"cannot build a machine for {shape}: {e.Message}", e);
            }
            WarmUp(guest.Machine, shape);
            // The pages that may hold data: those the build wrote (loaders write through the
            // dirty log), then those the stream fills. A zero run leaves the others untouched.
            var written = new ulong[guest.Machine.Memory.DirtyWords];
            guest.Machine.Memory.HarvestDirty(written);
            // The thread exists from now on, parked, so that starting the guest is a signal.
            guest.StartPaused();
            await MigrationWire.WriteAsync(channel, MigrationWire.Prepared, Array.Empty<byte>(), ct).ConfigureAwait(false);
            await channel.FlushAsync(ct).ConfigureAwait(false);

            // The whole stream is read on the guest's own thread, parked until the guest starts:
            // at switchover the thread that reads the last records is the one that loads the
            // state, answers ready, waits for go, says started and runs the guest, so no hand-off
            // on this side waits for another thread to wake (see docs/migration.md).
            var thread = guest;
            var memory = thread.Machine.Memory;
            var page = new byte[GuestMemory.PageSize];
            var writeLock = new object();
            ulong[]? missing = null;
            Exception? unconfirmed = null;
            await thread.ResumeWhen(_ =>
            {
                var buffer = new MigrationWire.Buffer();
                bool loaded = false;
                long applyTicks = 0, loadTicks = 0; // since the last round end: the switchover's share
                // The switchover's hand-offs on this side, sent back in 'C' (see MigrationWire).
                var marks = new long[TargetMarks];
                // After a round end, and after a small record, the switchover may be under way:
                // its next record is waited for spinning (a bulk round's big records are not).
                bool spin = false;
                Span<byte> timing = stackalloc byte[8];
                Span<byte> stamps = stackalloc byte[TargetMarks * 8];
                while (true)
                {
                    var (type, record) = MigrationWire.ReadSync(channel, buffer, Timeout.InfiniteTimeSpan, spin, ct);
                    long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
                    spin = false;
                    switch (type)
                    {
                        case MigrationWire.Pages:
                            ApplyPages(memory, record.Span, page, written);
                            applyTicks += System.Diagnostics.Stopwatch.GetTimestamp() - t0;
                            spin = record.Length <= SmallRecord;
                            break;
                        case MigrationWire.RoundEnd:
                            if (record.Length != 4)
                                throw new MigrationFailedException("round-end record of the wrong size");
                            applyTicks = 0;
                            MigrationWire.WriteSync(channel, MigrationWire.RoundApplied, record.Span);
                            channel.Flush();
                            spin = true;
                            break;
                        case MigrationWire.Missing:
                            if (record.Length != memory.DirtyWords * 8)
                                throw new MigrationFailedException($"missing-page bitmap of {record.Length} bytes for {memory.PageCount} pages");
                            missing = new ulong[memory.DirtyWords];
                            for (int i = 0; i < missing.Length; i++)
                                missing[i] = BinaryPrimitives.ReadUInt64LittleEndian(record.Span[(i * 8)..]);
                            if (missing.Length > 0 && memory.PageCount % 64 != 0 && (missing[^1] >> (memory.PageCount % 64)) != 0)
                                throw new MigrationFailedException("missing-page bitmap names pages beyond the guest's RAM");
                            spin = true;
                            break;
                        case MigrationWire.State:
                            marks[0] = t0;
                            var r = new StateReader(record.ToArray(), "state");
                            var state = StateCodec.Read(r, shape);
                            r.End();
                            try
                            {
                                thread.Machine.RestoreState(state);
                            }
                            catch (ArgumentException e)
                            {
                                throw new MigrationFailedException(e.Message, e);
                            }
                            loaded = true;
                            marks[1] = System.Diagnostics.Stopwatch.GetTimestamp();
                            loadTicks = marks[1] - t0;
                            spin = true;
                            break;
                        case MigrationWire.End:
                            if (!loaded)
                                throw new MigrationFailedException("the migration stream ended without the machine state");
                            marks[2] = t0;
                            BinaryPrimitives.WriteUInt32LittleEndian(timing, Micros(applyTicks));
                            BinaryPrimitives.WriteUInt32LittleEndian(timing[4..], Micros(loadTicks));
                            MigrationWire.WriteSync(channel, MigrationWire.Ready, timing);
                            channel.Flush();
                            marks[3] = System.Diagnostics.Stopwatch.GetTimestamp();
                            marks[4] = marks[3]; // this thread waits for go from here
                            var (decision, _) = MigrationWire.ReadSync(channel, buffer, decisionTimeout, spin: true, ct);
                            marks[5] = System.Diagnostics.Stopwatch.GetTimestamp();
                            if (decision != MigrationWire.Go)
                                throw new MigrationFailedException($"expected go from the source, got '{(char)decision}'");
                            // Go: the guest is ours from here on, whatever happens to the connection.
                            owned = true;
                            if (missing is not null)
                            {
                                memory.PageRequested = p => RequestPage(channel, writeLock, memory, p);
                                memory.MarkAbsent(missing);
                            }
                            beforeStart?.Invoke(thread);
                            try
                            {
                                lock (writeLock)
                                {
                                    marks[6] = System.Diagnostics.Stopwatch.GetTimestamp();
                                    for (int i = 0; i < TargetMarks; i++)
                                        BinaryPrimitives.WriteInt64LittleEndian(stamps[(i * 8)..], marks[i]);
                                    MigrationWire.WriteSync(channel, MigrationWire.Started, stamps);
                                    channel.Flush();
                                }
                            }
                            catch (Exception e) when (e is IOException or ObjectDisposedException or System.Net.Sockets.SocketException)
                            {
                                unconfirmed = e;
                            }
                            return true; // the guest runs on this thread from here
                        default:
                            throw new MigrationFailedException($"unexpected record '{(char)type}' in the migration stream");
                    }
                }
            }).ConfigureAwait(false);
            if (unconfirmed is not null)
            {
                // The source will find out from the cluster that the guest runs here.
                if (missing is null)
                    return thread;
                throw new MigrationFailedException($"post-copy: the source is unreachable ({unconfirmed.Message})", unconfirmed);
            }
            if (missing is not null)
                await ReceivePostCopy(channel, writeLock, memory, page, ct).ConfigureAwait(false);
            return thread;
        }
        catch (Exception e) when (!owned && e is MigrationFailedException or InvalidSnapshotException)
        {
            guest?.Dispose();
            await TryRefuse(channel, e.Message).ConfigureAwait(false);
            throw e as MigrationFailedException ?? new MigrationFailedException(e.Message, e);
        }
        catch (Exception e) when (owned)
        {
            // Post-copy broke. With every page here the guest goes on; else it cannot go on anywhere.
            if (guest!.Machine.Memory.AbsentPages == 0 && guest.State != MachineRunState.Stopped)
                return guest;
            guest.Machine.Memory.FailAbsent(e.Message);
            try
            {
                guest.Dispose();
            }
            catch (AggregateException stopped) when (stopped.InnerException is PageUnavailableException)
            {
                // the guest had already stopped on a page that cannot come: it is lost, as said below
            }
            throw new MigrationFailedException($"post-copy broke before every page arrived: the guest is lost ({e.Message})", e);
        }
        catch
        {
            guest?.Dispose();
            throw;
        }
    }

    // A page record this small (at most 16 pages with data) may be one of the switchover's last.
    private const int SmallRecord = 16 * (GuestMemory.PageSize + 9) + 1024;

    /// <summary>Timestamps the target sends back in 'C' (see MigrationWire).</summary>
    internal const int TargetMarks = 7;

    // Rounded up, so that any work at all shows.
    private static uint Micros(long ticks) => (uint)Math.Min(uint.MaxValue, ((ticks * 1_000_000) + System.Diagnostics.Stopwatch.Frequency - 1) / System.Diagnostics.Stopwatch.Frequency);

    // Runs the restore path once on the empty machine (its own state, encoded and decoded), so
    // that switchover does not wait for the JIT to compile it.
    private static void WarmUp(VirtMachine machine, MachineShape shape)
    {
        var w = new StateWriter();
        StateCodec.Write(w, machine.CaptureState());
        var r = new StateReader(w.ToArray(), "warm-up");
        var state = StateCodec.Read(r, shape);
        r.End();
        machine.RestoreState(state);
    }

    // On the thread that touched the page (a vCPU or a device), while the guest waits for it.
    private static void RequestPage(Stream channel, object writeLock, GuestMemory memory, int page)
    {
        Span<byte> index = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(index, (uint)page);
        try
        {
            lock (writeLock)
            {
                MigrationWire.WriteSync(channel, MigrationWire.Request, index);
                channel.Flush();
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or System.Net.Sockets.SocketException)
        {
            memory.FailAbsent($"cannot ask the source for page {page}: {e.Message}");
        }
    }

    private static async Task ReceivePostCopy(Stream channel, object writeLock, GuestMemory memory, byte[] page, CancellationToken ct)
    {
        while (true)
        {
            var (type, payload) = await MigrationWire.ReadAsync(channel, ct).ConfigureAwait(false);
            if (type == MigrationWire.Pages)
            {
                ApplyPages(memory, payload, page, written: null);
                continue;
            }
            if (type != MigrationWire.Finished)
                throw new MigrationFailedException($"unexpected record '{(char)type}' during post-copy");
            if (memory.AbsentPages != 0)
                throw new MigrationFailedException($"the source finished post-copy with {memory.AbsentPages} pages never sent");
            memory.PageRequested = null;
            lock (writeLock)
            {
                MigrationWire.WriteSync(channel, MigrationWire.Finished, []);
                channel.Flush();
            }
            return;
        }
    }

    private static async Task TryRefuse(Stream channel, string reason)
    {
        try
        {
            await MigrationWire.WriteAsync(channel, MigrationWire.Refused, MigrationWire.RefusalPayload(reason), CancellationToken.None).ConfigureAwait(false);
            await channel.FlushAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or NotSupportedException or System.Net.Sockets.SocketException)
        {
            // the source is gone; it will resume the guest on its own
        }
    }

    // written: pre-copy, the pages that may hold data (null in post-copy, where pages are filled aside).
    private static void ApplyPages(GuestMemory memory, ReadOnlySpan<byte> span, byte[] page, ulong[]? written)
    {
        bool postCopy = written is null;
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
                if (span.Length - pos < 4)
                    throw new MigrationFailedException("page record truncated");
                uint run = BinaryPrimitives.ReadUInt32LittleEndian(span[pos..]);
                pos += 4;
                if (run == 0 || run > (uint)memory.PageCount - index)
                    throw new MigrationFailedException($"a run of {run} zero pages from page {index} does not fit the guest's {memory.PageCount} pages");
                if (postCopy)
                {
                    page.AsSpan().Clear();
                    for (uint p = 0; p < run; p++)
                        memory.FillAbsent((int)(index + p), page);
                }
                else
                {
                    ClearPages(memory, (int)index, (int)run, written!);
                }
                continue;
            }
            // In post-copy a page is decoded aside and stored only if the guest has not fetched it meanwhile.
            var target = postCopy ? page.AsSpan() : memory.Span(address, GuestMemory.PageSize);
            if (span.Length - pos < 4)
                throw new MigrationFailedException("page record truncated");
            int length = (int)BinaryPrimitives.ReadUInt32LittleEndian(span[pos..]);
            pos += 4;
            if (length < 0 || length > span.Length - pos)
                throw new MigrationFailedException("page record truncated");
            var body = span.Slice(pos, length);
            pos += length;
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
                case MigrationWire.EncXorLz4 when !postCopy:
                    if (LZ4Codec.Decode(body, page) != GuestMemory.PageSize)
                        throw new MigrationFailedException($"delta page {index} does not decode to a page");
                    XorInto(target, page);
                    break;
                default:
                    throw new MigrationFailedException($"page {index} has unknown encoding {encoding}");
            }
            if (postCopy)
                memory.FillAbsent((int)index, page);
            else
                written![index >> 6] |= 1UL << (int)(index & 63);
        }
        if (pos != span.Length)
            throw new MigrationFailedException("page record has trailing bytes");
    }

    private static void XorInto(Span<byte> target, ReadOnlySpan<byte> delta)
    {
        var t = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, System.Numerics.Vector<byte>>(target);
        var d = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, System.Numerics.Vector<byte>>(delta);
        for (int i = 0; i < t.Length; i++)
            t[i] ^= d[i];
    }

    // Zeroes a run of pages, touching only those that may hold data: the others are still as the
    // host gave them, zero and not even backed (most of them, in round 0 of a fresh target).
    private static void ClearPages(GuestMemory memory, int first, int count, ulong[] written)
    {
        for (int p = first; p < first + count; p++)
        {
            if ((written[p >> 6] & (1UL << (p & 63))) == 0)
            {
                if ((p & 63) == 0 && written[p >> 6] == 0)
                    p += 63; // a whole word of untouched pages
                continue;
            }
            memory.Span(memory.Base + ((ulong)p * GuestMemory.PageSize), GuestMemory.PageSize).Clear();
            written[p >> 6] &= ~(1UL << (p & 63));
        }
    }
}
