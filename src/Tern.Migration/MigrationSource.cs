// The sending side of a pre-copy live migration. Round 0 sends every page while the guest
// runs; each later round harvests the dirty bitmap (clearing it before copying, so a page
// written during the copy is sent again) and sends those pages; once the remaining dirty set
// fits the downtime limit at the measured bandwidth, the guest is paused, the last pages and
// the machine state go, and the source lets go of the guest only after the target has
// acknowledged that it runs it. Any failure before that resumes the guest on the source.
using System.Buffers.Binary;
using System.Diagnostics;
using K4os.Compression.LZ4;
using Tern.Machine;
using Tern.Machine.Snapshot;
using Tern.Riscv;

namespace Tern.Migration;

/// <summary>Migrates a running guest out over a stream.</summary>
public sealed class MigrationSource
{
    private const int PagesPerRecord = 256;
    private readonly MachineThread _guest;
    private readonly MigrationOptions _options;
    private readonly Dictionary<int, byte[]> _sent = [];
    private long _cachedBytes;
    private long _bytes, _zero, _delta, _compressed, _raw;

    /// <summary>Prepares to migrate <paramref name="guest"/> (running or paused).</summary>
    public MigrationSource(MachineThread guest, MigrationOptions? options = null)
    {
        _guest = guest;
        _options = options ?? new MigrationOptions();
    }

    /// <summary>
    /// Migrates the guest over <paramref name="channel"/> (a connection to a
    /// <see cref="MigrationTarget"/>). On success the source guest is stopped; on failure it
    /// keeps running here and <see cref="MigrationFailedException"/> says why.
    /// </summary>
    public async Task<MigrationStats> MigrateAsync(Stream channel, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(channel);
        var total = Stopwatch.StartNew();
        var memory = _guest.Machine.Memory;
        var dirty = new ulong[memory.DirtyWords];
        bool paused = false;
        bool wasPaused = _guest.State == MachineRunState.Paused;
        Task<(byte Type, byte[] Payload)>? answer = null;
        try
        {
            var shape = await _guest.InvokeAsync(m => m.CaptureState().Shape).ConfigureAwait(false);
            var hello = new StateWriter();
            StateCodec.Write(hello, shape);
            byte[] helloBytes = [.. MigrationWire.Magic, .. hello.ToArray()];
            await MigrationWire.WriteAsync(channel, MigrationWire.Hello, helloBytes, ct).ConfigureAwait(false);
            double setupMs = total.Elapsed.TotalMilliseconds;
            // The target answers once, at the end or as soon as it refuses; listen from the start.
            answer = MigrationWire.ReadAsync(channel, ct);

            // Round 0: everything, after clearing the log so that later rounds see only new writes.
            await Harvest(dirty).ConfigureAwait(false);
            await SendPages(channel, memory, AllPages(memory.PageCount), ct).ConfigureAwait(false);
            Report("precopy", 1, memory.CountDirty(), 0, 0, total);
            int round = 1;
            double bandwidth = 0, dirtyRate = 0;
            while (true)
            {
                var roundWatch = Stopwatch.StartNew();
                long before = _bytes;
                await Harvest(dirty).ConfigureAwait(false);
                var pages = DirtyPages(dirty);
                double secondsSinceLast = Math.Max(roundWatch.Elapsed.TotalSeconds, 1e-6);
                await SendPages(channel, memory, pages, ct).ConfigureAwait(false);
                await MigrationWire.WriteAsync(channel, MigrationWire.RoundEnd, BitConverter.GetBytes(round), ct).ConfigureAwait(false);
                if (answer.IsCompleted)
                    await CheckEarlyAnswer(answer).ConfigureAwait(false);
                double seconds = Math.Max(roundWatch.Elapsed.TotalSeconds, 1e-6);
                bandwidth = Math.Max(bandwidth, (_bytes - before) / seconds);
                dirtyRate = pages.Count / Math.Max(secondsSinceLast + seconds, 1e-6);
                round++;
                // Will what the guest dirtied during this round fit the downtime limit?
                int pending = memory.CountDirty(); // dirtied during this round, not yet harvested
                double expected = bandwidth > 0 ? pending * (double)GuestMemory.PageSize / bandwidth : double.MaxValue;
                Report("precopy", round, pending, dirtyRate, bandwidth, total);
                if (pages.Count == 0 || expected <= _options.DowntimeLimit.TotalSeconds || round > _options.MaxRounds)
                    break;
            }

            // Switchover: stop the guest between quanta (disk requests complete synchronously, so
            // none is in flight), send the last pages and the state, wait for the target.
            Report("switchover", round, memory.CountDirty(), dirtyRate, bandwidth, total);
            var down = Stopwatch.StartNew();
            await _guest.PauseAsync().ConfigureAwait(false);
            paused = true;
            double pauseMs = down.Elapsed.TotalMilliseconds;
            await Harvest(dirty).ConfigureAwait(false);
            await SendPages(channel, memory, DirtyPages(dirty), ct).ConfigureAwait(false);
            var state = await _guest.InvokeAsync(m => m.CaptureState()).ConfigureAwait(false);
            var stat = new StateWriter();
            StateCodec.Write(stat, state);
            await MigrationWire.WriteAsync(channel, MigrationWire.State, stat.ToArray(), ct).ConfigureAwait(false);
            await MigrationWire.WriteAsync(channel, MigrationWire.End, Array.Empty<byte>(), ct).ConfigureAwait(false);
            await channel.FlushAsync(ct).ConfigureAwait(false);
            double copiedMs = down.Elapsed.TotalMilliseconds;

            var (type, payload) = await answer.WaitAsync(_options.AckTimeout, ct).ConfigureAwait(false);
            if (type == MigrationWire.Refused)
                throw new MigrationFailedException($"the target refused the guest: {System.Text.Encoding.UTF8.GetString(payload)}");
            if (type != MigrationWire.Accepted)
                throw new MigrationFailedException($"unexpected answer '{(char)type}' from the target");
            double downtimeMs = down.Elapsed.TotalMilliseconds;

            // Committed: the target owns the guest now.
            await _guest.StopAsync().ConfigureAwait(false);
            Report("completed", round, 0, dirtyRate, bandwidth, total);
            return new MigrationStats
            {
                Status = "completed",
                TotalTimeMs = total.Elapsed.TotalMilliseconds,
                SetupTimeMs = setupMs,
                DowntimeMs = downtimeMs,
                Rounds = round,
                BytesSent = _bytes,
                PagesZero = _zero,
                PagesDelta = _delta,
                PagesCompressed = _compressed,
                PagesRaw = _raw,
                DirtyPagesRate = dirtyRate,
                BandwidthMiBps = bandwidth / (1 << 20),
                PauseMs = pauseMs,
                FinalCopyMs = copiedMs - pauseMs,
                AckWaitMs = downtimeMs - copiedMs,
            };
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or TimeoutException or MigrationFailedException or ObjectDisposedException or System.Net.Sockets.SocketException)
        {
            if (paused && !wasPaused)
                _guest.Resume();
            if (answer is { IsCompleted: false })
                channel.Dispose(); // ends the pending read; the connection is finished either way
            throw e as MigrationFailedException ?? new MigrationFailedException($"migration failed, the guest keeps running on the source: {e.Message}", e);
        }
    }

    private void Report(string phase, int round, int dirtyPages, double dirtyRate, double bandwidth, Stopwatch total)
    {
        if (_options.Progress is not { } progress)
            return;
        long remaining = (long)dirtyPages * GuestMemory.PageSize;
        double expectedMs = bandwidth > 0 ? remaining * 1000.0 / bandwidth : 0;
        progress.Report(new MigrationProgress(phase, round, remaining, dirtyRate, bandwidth / (1 << 20), expectedMs, _bytes, total.Elapsed.TotalMilliseconds));
    }

    private static async Task CheckEarlyAnswer(Task<(byte Type, byte[] Payload)> answer)
    {
        var (type, payload) = await answer.ConfigureAwait(false);
        throw new MigrationFailedException(type == MigrationWire.Refused
            ? $"the target refused the guest: {System.Text.Encoding.UTF8.GetString(payload)}"
            : $"unexpected answer '{(char)type}' from the target before the end of the stream");
    }

    private Task<int> Harvest(ulong[] dirty) => _guest.InvokeAsync(m =>
    {
        m.Memory.HarvestDirty(dirty);
        return 0;
    });

    private static List<int> AllPages(int count) => [.. Enumerable.Range(0, count)];

    private static List<int> DirtyPages(ulong[] bits)
    {
        var pages = new List<int>();
        for (int w = 0; w < bits.Length; w++)
        {
            ulong word = bits[w];
            while (word != 0)
            {
                int b = System.Numerics.BitOperations.TrailingZeroCount(word);
                pages.Add((w * 64) + b);
                word &= word - 1;
            }
        }
        return pages;
    }

    private async Task SendPages(Stream channel, GuestMemory memory, List<int> pages, CancellationToken ct)
    {
        var record = new MemoryStream();
        var page = new byte[GuestMemory.PageSize];
        var work = new byte[LZ4Codec.MaximumOutputSize(GuestMemory.PageSize)];
        var xor = new byte[GuestMemory.PageSize];
        var delta = new byte[work.Length];
        for (int start = 0; start < pages.Count; start += PagesPerRecord)
        {
            int count = Math.Min(PagesPerRecord, pages.Count - start);
            record.SetLength(0);
            WriteU32(record, (uint)count);
            for (int i = start; i < start + count; i++)
            {
                int index = pages[i];
                memory.Read(memory.Base + ((ulong)index * GuestMemory.PageSize), page);
                EncodePage(record, index, page, work, xor, delta);
            }
            await MigrationWire.WriteAsync(channel, MigrationWire.Pages, record.GetBuffer().AsMemory(0, (int)record.Length), ct).ConfigureAwait(false);
            _bytes += record.Length + 9;
        }
    }

    private void EncodePage(MemoryStream record, int index, byte[] page, byte[] work, byte[] xor, byte[] delta)
    {
        WriteU32(record, (uint)index);
        if (!page.AsSpan().ContainsAnyExcept((byte)0))
        {
            record.WriteByte(MigrationWire.EncZero);
            _zero++;
            _sent.Remove(index, out var stale);
            _cachedBytes -= stale?.Length ?? 0;
            return;
        }
        int lz4 = LZ4Codec.Encode(page, work, LZ4Level.L00_FAST);
        byte encoding = MigrationWire.EncRaw;
        ReadOnlySpan<byte> body = page;
        if (_sent.TryGetValue(index, out var previous))
        {
            for (int i = 0; i < xor.Length; i++)
                xor[i] = (byte)(page[i] ^ previous[i]);
            int d = LZ4Codec.Encode(xor, delta, LZ4Level.L00_FAST);
            if (d > 0 && d < Math.Min(lz4 > 0 ? lz4 : int.MaxValue, GuestMemory.PageSize * 3 / 4))
            {
                encoding = MigrationWire.EncXorLz4;
                body = delta.AsSpan(0, d);
                _delta++;
            }
            page.CopyTo(previous, 0);
        }
        else if (_cachedBytes + GuestMemory.PageSize <= _options.DeltaCacheBytes)
        {
            _sent[index] = (byte[])page.Clone();
            _cachedBytes += GuestMemory.PageSize;
        }
        if (encoding == MigrationWire.EncRaw && lz4 > 0 && lz4 < GuestMemory.PageSize * 3 / 4)
        {
            encoding = MigrationWire.EncLz4;
            body = work.AsSpan(0, lz4);
            _compressed++;
        }
        else if (encoding == MigrationWire.EncRaw)
        {
            _raw++;
        }
        record.WriteByte(encoding);
        WriteU32(record, (uint)body.Length);
        record.Write(body);
    }

    private static void WriteU32(MemoryStream s, uint v)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, v);
        s.Write(b);
    }
}
