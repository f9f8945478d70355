// The sending side of a live migration. Round 0 sends every page while the guest runs; each
// later round harvests the dirty bitmap (clearing it before copying, so a page written during
// the copy is sent again) and sends those pages, throttling the guest's vCPUs step by step
// when it dirties memory faster than the link drains it (auto-converge). Once the remaining
// dirty set fits the downtime limit at the measured bandwidth, the guest is paused and the
// last pages and the machine state go in one write; the switchover is two-phase (the target
// loads and says ready, the source says go, the target starts the guest and confirms), so
// the guest never runs on both sides. Any failure before 'go' resumes the guest here.
using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using K4os.Compression.LZ4;
using Tern.Machine;
using Tern.Machine.Snapshot;
using Tern.Riscv;

namespace Tern.Migration;

/// <summary>Migrates a running guest out over a stream.</summary>
public sealed partial class MigrationSource
{
    private const int PagesPerRecord = 256;
    // At switchover the last pages go in small records, so that the target applies one while
    // the next is encoded (the paused guest leaves both sides a core).
    private const int FinalPagesPerRecord = 16;
    private const int RecordBytes = 1 << 20;
    // Rounds with fewer pages are dominated by fixed costs (reaching a quantum boundary to harvest):
    // they tell nothing of the link's speed, nor whether the guest outruns it.
    private const int MeasurablePages = 64;
    // Rounds a migration may add, once its dirty set fits the downtime limit, to shrink it further.
    private const int ExtraRounds = 3;
    private readonly MachineThread _guest;
    private readonly MigrationOptions _options;
    private readonly byte[] _work = new byte[LZ4Codec.MaximumOutputSize(GuestMemory.PageSize)];
    private readonly byte[] _xor = new byte[GuestMemory.PageSize];
    private readonly byte[] _delta = new byte[LZ4Codec.MaximumOutputSize(GuestMemory.PageSize)];
    private readonly System.Buffers.ArrayBufferWriter<byte> _record = new(1 << 20);
    private byte[]? _cache;
    private int[]? _slot; // per page: its slot in _cache + 1, 0 for none
    private int _cacheUsed;
    private long _encodeTicks, _writeTicks, _waitTicks;
    private const int IncompressibleStreak = 32;
    private int _incompressible, _skipped;
    private bool _bulkDone; // round 0 has been sent
    private long _bytes, _zero, _delta_, _compressed, _raw;
    private long _pacedBytes;
    private Stopwatch? _pace;
    private int _throttle, _maxThrottle;
    private bool _inDoubt;

    /// <summary>Prepares to migrate <paramref name="guest"/> (running or paused).</summary>
    public MigrationSource(MachineThread guest, MigrationOptions? options = null)
    {
        _guest = guest;
        _options = options ?? new MigrationOptions();
    }

    /// <summary>
    /// Migrates the guest over <paramref name="channel"/> (a connection to a
    /// <see cref="MigrationTarget"/>). On success the source guest is stopped; on failure it
    /// keeps running here and <see cref="MigrationFailedException"/> says why, except for a
    /// <see cref="MigrationInDoubtException"/> (see there).
    /// </summary>
    public async Task<MigrationStats> MigrateAsync(Stream channel, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(channel);
        var total = Stopwatch.StartNew();
        // The first migration of a process waits for the rehearsal (counted in its setup time).
        MigrationWarmUp.MigrationBegins();
        await MigrationWarmUp.EnsureAsync().WaitAsync(ct).ConfigureAwait(false);
        return await MigrateCoreAsync(channel, total, ct).ConfigureAwait(false);
    }

    // MigrateAsync without the rehearsal (which uses it).
    internal Task<MigrationStats> MigrateCoreAsync(Stream channel, CancellationToken ct) => MigrateCoreAsync(channel, Stopwatch.StartNew(), ct);

    private async Task<MigrationStats> MigrateCoreAsync(Stream channel, Stopwatch total, CancellationToken ct)
    {
        var memory = _guest.Machine.Memory;
        var dirty = new ulong[memory.DirtyWords];
        bool paused = false, goSent = false;
        bool wasPaused = _guest.State == MachineRunState.Paused;
        bool postCopy = _options.PostCopy || _options.PostCopyAtOnce;
        Task<(byte Type, byte[] Payload)>? answer = null;
        try
        {
            // Prepare: the shape, and one encoding of the state to have that path compiled before switchover.
            var shape = await _guest.InvokeAsync(m =>
            {
                var s = m.CaptureState();
                StateCodec.Write(new StateWriter(), s);
                return s.Shape;
            }).ConfigureAwait(false);
            var hello = new StateWriter();
            StateCodec.Write(hello, shape);
            byte[] helloBytes = [.. MigrationWire.Magic, .. hello.ToArray()];
            await MigrationWire.WriteAsync(channel, MigrationWire.Hello, helloBytes, ct).ConfigureAwait(false);
            await channel.FlushAsync(ct).ConfigureAwait(false);
            var (prepared, reason) = await MigrationWire.ReadAsync(channel, ct).WaitAsync(_options.AckTimeout, ct).ConfigureAwait(false);
            if (prepared != MigrationWire.Prepared)
                throw Unexpected(prepared, reason, "to the hello");
            double setupMs = total.Elapsed.TotalMilliseconds;
            // During the rounds the target speaks only to say a round is applied (or to refuse):
            // listen from the start of each. Not during the switchover, whose answers this thread
            // reads itself (post-copy at once has no rounds).
            if (!_options.PostCopyAtOnce)
                answer = MigrationWire.ReadAsync(channel, ct);

            // Round 0: everything, after clearing the log so that later rounds see only new writes.
            // Post-copy at once sends no page before the switchover: it only notes which pages
            // hold data (the target starts zero-filled, so the others need never travel).
            _pace = Stopwatch.StartNew();
            var round0 = Stopwatch.StartNew();
            await Harvest(dirty).ConfigureAwait(false);
            long zeroBefore = _zero;
            ulong[]? withData = null;
            if (_options.PostCopyAtOnce)
                withData = PagesWithData(memory);
            else
            {
                await SendPages(channel, memory, AllPages(memory.PageCount), ct).ConfigureAwait(false);
                await EndRound(channel, 0, answer!, ct).ConfigureAwait(false);
                answer = null;
            }
            _bulkDone = true;
            // How fast the channel drains pages with data: round 0's non-zero pages over its whole
            // time (a lower bound), then the best round big enough to measure.
            long dataPages0 = memory.PageCount - (_zero - zeroBefore);
            double pageRate = withData is not null ? 0 : Math.Max(0, dataPages0) / Math.Max(round0.Elapsed.TotalSeconds, 1e-6);
            // An idle guest's few pages of data tell nothing of the link (round 0's time went to
            // finding the zero pages): until a round big enough says, a set too small to measure fits.
            bool measured = withData is null && dataPages0 >= MeasurablePages;
            double bandwidth = withData is not null ? 0 : _bytes / Math.Max(round0.Elapsed.TotalSeconds, 1e-6);
            double dirtyRate = 0;
            int round = withData is not null ? 0 : 1;
            bool converged = false;
            int fitting = 0; // rounds that ended within the limit but were kept on to shrink the last set
            double limit = _options.DowntimeLimit.TotalSeconds;
            Report("precopy", round, memory.CountDirty(), 0, bandwidth, total);
            while (!postCopy)
            {
                answer ??= MigrationWire.ReadAsync(channel, ct);
                var roundWatch = Stopwatch.StartNew();
                long before = _bytes;
                await Harvest(dirty).ConfigureAwait(false);
                var pages = DirtyPages(dirty);
                await SendPages(channel, memory, pages, ct).ConfigureAwait(false);
                await EndRound(channel, round, answer, ct).ConfigureAwait(false);
                answer = null;
                double seconds = Math.Max(roundWatch.Elapsed.TotalSeconds, 1e-6);
                if (pages.Count >= MeasurablePages)
                {
                    bandwidth = Math.Max(bandwidth, (_bytes - before) / seconds);
                    pageRate = Math.Max(pageRate, pages.Count / seconds);
                    measured = true;
                }
                dirtyRate = pages.Count / seconds;
                round++;
                // Will what the guest dirtied during this round fit the downtime limit?
                int pending = memory.CountDirty(); // dirtied during this round, not yet harvested
                double expected = pageRate > 0 ? pending / pageRate : double.MaxValue;
                bool fits = pages.Count == 0 || expected <= limit || (!measured && pending < MeasurablePages);
                // The limit is a bound, not an aim: while a round still halves the dirty set, one
                // more (a few milliseconds once the set fits) makes the pause shorter, so a set that
                // fits goes on shrinking, for at most three more rounds, until it is too small to
                // measure (a stop-and-copy of a few tens of pages); a set that stopped shrinking
                // goes as it is once it is within a quarter of the limit (or auto-converge is off).
                bool shrinking = pending * 2 <= pages.Count;
                converged = fits && (pending < MeasurablePages || fitting >= ExtraRounds || (!shrinking && (expected <= limit / 4 || !_options.AutoConverge)));
                if (fits && !converged)
                    fitting++;
                // Auto-converge: the guest dirtied more than half of what a round big enough to
                // measure could send, so the dirty set is not shrinking fast enough.
                if (!converged && _options.AutoConverge && pages.Count >= MeasurablePages && !shrinking)
                    StepThrottle();
                Report("precopy", round, pending, dirtyRate, bandwidth, total);
                if (converged || round > _options.MaxRounds)
                {
                    converged |= fits;
                    break;
                }
            }

            // Switchover: on the guest's thread, in the one stop that pauses it, harvest the last
            // dirty pages and capture the state (virtio requests complete inside the notify that
            // starts them, so none is in flight). By default that thread, running already, also
            // does the rest: the last pages stream out in small records that the target applies
            // while the next is encoded, the state and the end follow in one write, and it reads
            // ready, writes go and reads started itself, polling the socket for the first
            // milliseconds of each wait (the target does the same on its guest thread), so a
            // hand-off waits for a wake-up only when the other side is slow (docs/migration.md).
            Report("switchover", round, memory.CountDirty(), dirtyRate, bandwidth, total);
            var marks = new long[SourceMarks];
            var targetMarks = new long[MigrationTarget.TargetMarks];
            int gcs = GC.CollectionCount(0);
            long jitted = System.Runtime.JitInfo.GetCompiledMethodCount(currentThread: false);
            List<int> last = [];
            List<int>? missing = null;
            byte[] stat = [];
            byte[] why = [];
            marks[0] = Stopwatch.GetTimestamp();

            void Capture(VirtMachine m)
            {
                marks[1] = Stopwatch.GetTimestamp();
                paused = true;
                m.Memory.HarvestDirty(dirty);
                var w = new StateWriter();
                StateCodec.Write(w, m.CaptureState());
                stat = w.ToArray();
                marks[2] = Stopwatch.GetTimestamp();
            }

            void Finish()
            {
                marks[3] = Stopwatch.GetTimestamp();
                // A cancellation closes the channel, which ends any write or read below.
                using var cancelled = ct.UnsafeRegister(static c => ((Stream)c!).Dispose(), channel);
                try
                {
                    last = DirtyPages(dirty);
                    var final = new MemoryStream();
                    if (postCopy)
                    {
                        if (withData is not null)
                        {
                            // At once: every page that held data before the pause or was written since.
                            for (int i = 0; i < dirty.Length; i++)
                                dirty[i] |= withData[i];
                            last = DirtyPages(dirty);
                        }
                        missing = last; // the target fetches these on demand, the background pass pushes them
                        MigrationWire.Append(final, MigrationWire.Missing, EncodeBitmap(dirty));
                    }
                    else
                    {
                        for (int next = 0; next < last.Count;)
                        {
                            next = EncodeRecord(memory, last, next, FinalPagesPerRecord);
                            MigrationWire.WriteSync(channel, MigrationWire.Pages, _record.WrittenSpan);
                            _bytes += _record.WrittenCount + 9;
                        }
                    }
                    marks[4] = Stopwatch.GetTimestamp();
                    MigrationWire.Append(final, MigrationWire.State, stat);
                    MigrationWire.Append(final, MigrationWire.End, []);
                    channel.Write(final.GetBuffer(), 0, (int)final.Length);
                    channel.Flush();
                    _bytes += final.Length;
                    marks[5] = Stopwatch.GetTimestamp();

                    (byte ready, why) = MigrationWire.ReadSync(channel, _options.AckTimeout, ct);
                    if (ready != MigrationWire.Ready || why.Length != 8)
                        throw Unexpected(ready, why, "at switchover");
                    marks[6] = Stopwatch.GetTimestamp();

                    // The commit point: from 'go' on, the target owns the guest.
                    ct.ThrowIfCancellationRequested();
                    goSent = true;
                    MigrationWire.WriteSync(channel, MigrationWire.Go, []);
                    channel.Flush();
                    marks[7] = Stopwatch.GetTimestamp();
                    var (confirm, text) = MigrationWire.ReadSync(channel, _options.AckTimeout, ct);
                    if (confirm != MigrationWire.Started)
                        throw Unexpected(confirm, text, "after go");
                    marks[8] = Stopwatch.GetTimestamp();
                    if (text.Length == targetMarks.Length * 8)
                    {
                        for (int i = 0; i < targetMarks.Length; i++)
                            targetMarks[i] = BinaryPrimitives.ReadInt64LittleEndian(text.AsSpan(i * 8));
                    }
                }
                catch (Exception e) when (ct.IsCancellationRequested && e is IOException or ObjectDisposedException or System.Net.Sockets.SocketException)
                {
                    throw new OperationCanceledException("the migration was cancelled", e, ct);
                }
            }

            if (SwitchOnGuestThread)
            {
                await _guest.PauseAsync(m =>
                {
                    Capture(m);
                    Finish();
                    return 0;
                }).ConfigureAwait(false);
            }
            else
            {
                await _guest.PauseAsync(m =>
                {
                    Capture(m);
                    return 0;
                }).ConfigureAwait(false);
                Finish();
            }
            gcs = GC.CollectionCount(0) - gcs;
            jitted = System.Runtime.JitInfo.GetCompiledMethodCount(currentThread: false) - jitted;
            double Ms(int mark) => (marks[mark] - marks[0]) * 1000.0 / Stopwatch.Frequency;
            double pauseMs = Ms(1), pausedMs = Ms(2), copiedMs = Ms(5), readyMs = Ms(6), downtimeMs = Ms(8);
            // The target's own account of the ready wait: applying the last pages, loading the state.
            double targetApplyMs = BinaryPrimitives.ReadUInt32LittleEndian(why) / 1000.0;
            double targetLoadMs = BinaryPrimitives.ReadUInt32LittleEndian(why.AsSpan(4)) / 1000.0;
            var timeline = Timeline(marks, targetMarks, gcs, (int)jitted);

            if (missing is not null)
                await ServePostCopy(channel, memory, missing, ct).ConfigureAwait(false);

            // Committed: the target runs the guest; free it here.
            _guest.ThrottlePercent = 0;
            await _guest.StopAsync().ConfigureAwait(false);
            var stats = new MigrationStats
            {
                Status = "completed",
                TotalTimeMs = total.Elapsed.TotalMilliseconds,
                SetupTimeMs = setupMs,
                DowntimeMs = downtimeMs,
                Rounds = round,
                BytesSent = _bytes,
                PagesZero = _zero,
                PagesDelta = _delta_,
                PagesCompressed = _compressed,
                PagesRaw = _raw,
                DirtyPagesRate = dirtyRate,
                BandwidthMiBps = bandwidth / (1 << 20),
                ThrottlePercent = _maxThrottle,
                Converged = converged || postCopy,
                PauseMs = pauseMs,
                FinalCopyMs = copiedMs - pauseMs,
                ReadyWaitMs = readyMs - copiedMs,
                AckWaitMs = downtimeMs - copiedMs,
                PostCopyPages = _postCopyRequested,
                FinalPages = last.Count,
                StateCaptureMs = pausedMs - pauseMs,
                TargetApplyMs = targetApplyMs,
                TargetLoadMs = targetLoadMs,
                Timeline = timeline,
                EncodeMs = _encodeTicks * 1000.0 / Stopwatch.Frequency,
                WriteMs = _writeTicks * 1000.0 / Stopwatch.Frequency,
                RoundWaitMs = _waitTicks * 1000.0 / Stopwatch.Frequency,
            };
            Report("completed", round, 0, dirtyRate, bandwidth, total, stats);
            return stats;
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or TimeoutException or MigrationFailedException or ObjectDisposedException or System.Net.Sockets.SocketException or InvalidSnapshotException)
        {
            if (_guest.State != MachineRunState.Stopped)
                _guest.ThrottlePercent = 0;
            channel.Dispose(); // ends any pending read; the connection is finished either way
            if (goSent && e is not MigrationInDoubtException)
            {
                if (_postCopyStarted)
                {
                    await _guest.StopAsync().ConfigureAwait(false);
                    throw new MigrationFailedException($"post-copy broke after the guest moved to the target ({e.Message}): it survives there only if every page had arrived, and never runs here again", e);
                }
                _inDoubt = true;
                throw new MigrationInDoubtException($"the switchover broke after 'go' ({e.Message}): the guest runs on the target if 'go' arrived; it stays paused here until resolved", e);
            }
            if (paused && !wasPaused)
                _guest.Resume();
            else if (!paused && !wasPaused && _guest.State == MachineRunState.Paused)
                _guest.Resume(); // the switchover's pause may have landed before its failure
            throw e as MigrationFailedException ?? new MigrationFailedException($"migration failed, the guest keeps running on the source: {e.Message}", e);
        }
    }

    /// <summary>
    /// Settles a migration that ended in <see cref="MigrationInDoubtException"/>:
    /// <paramref name="targetRunsGuest"/> is the target's answer (e.g. through the cluster). If it
    /// runs the guest, the source copy is stopped; otherwise the source resumes it.
    /// </summary>
    public async Task ResolveInDoubtAsync(bool targetRunsGuest)
    {
        if (!_inDoubt)
            throw new InvalidOperationException("this migration is not in doubt");
        _inDoubt = false;
        if (targetRunsGuest)
            await _guest.StopAsync().ConfigureAwait(false);
        else
            _guest.Resume();
    }

    // The source's hand-offs in the switchover, in order: pause requested, guest parked, state
    // captured, the rest of the switchover begun, last pages sent, state sent, ready read, go
    // sent, started read.
    private const int SourceMarks = 9;

    /// <summary>
    /// Whether the guest's own thread, once paused, runs the whole switchover (true by default;
    /// TERN_MIGRATION_SWITCH_ON_GUEST_THREAD=0 hands it back to the migration's thread, the
    /// layout before, to compare).
    /// </summary>
    internal static readonly bool SwitchOnGuestThread = Environment.GetEnvironmentVariable("TERN_MIGRATION_SWITCH_ON_GUEST_THREAD") != "0";

    // The target's marks are on the source's timeline when both run on one host (the same
    // monotonic clock): then they fall, in order, between the pause and the started answer.
    private static SwitchoverTimeline Timeline(long[] s, long[] t, int gcs, int jitted)
    {
        double Ms(long mark) => (mark - s[0]) * 1000.0 / Stopwatch.Frequency;
        bool shared = t[0] >= s[0] && t[^1] <= s[8];
        for (int i = 1; i < t.Length && shared; i++)
            shared = t[i] >= t[i - 1];
        double T(int i) => shared ? Ms(t[i]) : double.NaN;
        return new SwitchoverTimeline
        {
            GuestParkedMs = Ms(s[1]),
            StateCapturedMs = Ms(s[2]),
            SwitchoverBegunMs = Ms(s[3]),
            FinalPagesSentMs = Ms(s[4]),
            StateSentMs = Ms(s[5]),
            TargetStateReadMs = T(0),
            TargetLoadedMs = T(1),
            TargetEndReadMs = T(2),
            TargetReadySentMs = T(3),
            ReadySeenMs = Ms(s[6]),
            TargetGuestThreadWaitingMs = T(4),
            GoSentMs = Ms(s[7]),
            TargetGoReadMs = T(5),
            TargetStartedSentMs = T(6),
            StartedSeenMs = Ms(s[8]),
            Gen0Collections = gcs,
            MethodsJitted = jitted,
        };
    }

    // Flow control: each round ends when the target has applied it, so the pipe is empty when
    // the guest pauses (else switchover waits for a backlog of rounds) and the measured rate is
    // what the target can take, not what the socket buffers swallow.
    private async Task EndRound(Stream channel, int round, Task<(byte Type, byte[] Payload)> answer, CancellationToken ct)
    {
        await MigrationWire.WriteAsync(channel, MigrationWire.RoundEnd, BitConverter.GetBytes(round), ct).ConfigureAwait(false);
        await channel.FlushAsync(ct).ConfigureAwait(false);
        long t0 = Stopwatch.GetTimestamp();
        var (type, payload) = await answer.WaitAsync(_options.AckTimeout, ct).ConfigureAwait(false);
        _waitTicks += Stopwatch.GetTimestamp() - t0;
        if (type != MigrationWire.RoundApplied || payload.Length != 4 || BitConverter.ToInt32(payload) != round)
            throw Unexpected(type, payload, $"at the end of round {round}");
    }

    private static MigrationFailedException Unexpected(byte type, byte[] payload, string when) => type == MigrationWire.Refused
        ? new MigrationFailedException($"the target refused the guest: {System.Text.Encoding.UTF8.GetString(payload)}")
        : new MigrationFailedException($"unexpected answer '{(char)type}' from the target {when}");

    private void StepThrottle()
    {
        _throttle = _throttle == 0 ? _options.ThrottleInitial : Math.Min(99, _throttle + _options.ThrottleIncrement);
        _maxThrottle = Math.Max(_maxThrottle, _throttle);
        _guest.ThrottlePercent = Math.Clamp(_throttle, 0, 99);
    }

    private void Report(string phase, int round, int dirtyPages, double dirtyRate, double bandwidth, Stopwatch total, MigrationStats? stats = null)
    {
        if (_options.Progress is not { } progress)
            return;
        long remaining = (long)dirtyPages * GuestMemory.PageSize;
        double expectedMs = bandwidth > 0 ? remaining * 1000.0 / bandwidth : 0;
        progress.Report(new MigrationProgress(phase, round, remaining, dirtyRate, bandwidth / (1 << 20), expectedMs, _bytes, total.Elapsed.TotalMilliseconds) { ThrottlePercent = _throttle, Stats = stats });
    }

    private Task<int> Harvest(ulong[] dirty) => _guest.InvokeAsync(m =>
    {
        m.Memory.HarvestDirty(dirty);
        return 0;
    });

    // One bit per page that holds anything but zeros (read while the guest runs: a page it
    // writes afterwards is in the dirty log as well).
    private static ulong[] PagesWithData(GuestMemory memory)
    {
        var bits = new ulong[memory.DirtyWords];
        for (int p = 0; p < memory.PageCount; p++)
        {
            if (memory.Span(memory.Base + ((ulong)p * GuestMemory.PageSize), GuestMemory.PageSize).ContainsAnyExcept((byte)0))
                bits[p >> 6] |= 1UL << (p & 63);
        }
        return bits;
    }

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

    private static byte[] EncodeBitmap(ulong[] bits)
    {
        var bytes = new byte[bits.Length * 8];
        for (int i = 0; i < bits.Length; i++)
            BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(i * 8), bits[i]);
        return bytes;
    }

    private async Task SendPages(Stream channel, GuestMemory memory, List<int> pages, CancellationToken ct)
    {
        for (int next = 0; next < pages.Count;)
        {
            long t0 = Stopwatch.GetTimestamp();
            next = EncodeRecord(memory, pages, next, PagesPerRecord);
            long t1 = Stopwatch.GetTimestamp();
            await MigrationWire.WriteAsync(channel, MigrationWire.Pages, _record.WrittenMemory, ct).ConfigureAwait(false);
            _encodeTicks += t1 - t0;
            _writeTicks += Stopwatch.GetTimestamp() - t1;
            _bytes += _record.WrittenCount + 9;
            await Pace(_record.WrittenCount + 9, ct).ConfigureAwait(false);
        }
    }

    // Keeps the pre-copy rounds under MaxBandwidth: waits whenever they are ahead of it.
    private async Task Pace(long bytes, CancellationToken ct)
    {
        if (_options.MaxBandwidth <= 0 || _pace is null)
            return;
        _pacedBytes += bytes;
        double due = _pacedBytes / (double)_options.MaxBandwidth;
        double ahead = due - _pace.Elapsed.TotalSeconds;
        if (ahead < -0.01)
        {
            // Slower than the cap for a while (e.g. waiting for the guest's thread): no burst to catch up.
            _pace.Restart();
            _pacedBytes = 0;
        }
        else if (ahead > 0.002)
            await Task.Delay(TimeSpan.FromSeconds(ahead), ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Encodes pages[start..] into <see cref="_record"/> until it holds <paramref name="maxPages"/>
    /// pages with data or about <see cref="RecordBytes"/> bytes; returns where it stopped. Runs of
    /// zero pages (the untouched bulk of a guest's RAM) take one entry each, whatever their length.
    /// </summary>
    private int EncodeRecord(GuestMemory memory, List<int> pages, int start, int maxPages)
    {
        _record.Clear();
        WriteU32(_record, 0); // the entry count, set below
        uint entries = 0;
        int dataPages = 0;
        int runStart = -1, runLength = 0;
        int i = start;
        for (; i < pages.Count && dataPages < maxPages && _record.WrittenCount < RecordBytes; i++)
        {
            int index = pages[i];
            var live = memory.Span(memory.Base + ((ulong)index * GuestMemory.PageSize), GuestMemory.PageSize);
            if (!live.ContainsAnyExcept((byte)0))
            {
                ForgetCached(index);
                _zero++;
                if (runLength > 0 && index == runStart + runLength)
                {
                    runLength++;
                    continue;
                }
                if (runLength > 0)
                {
                    WriteZeroRun(runStart, runLength);
                    entries++;
                }
                runStart = index;
                runLength = 1;
                continue;
            }
            if (runLength > 0)
            {
                WriteZeroRun(runStart, runLength);
                entries++;
                runLength = 0;
            }
            EncodePage(index, live);
            entries++;
            dataPages++;
        }
        if (runLength > 0)
        {
            WriteZeroRun(runStart, runLength);
            entries++;
        }
        BinaryPrimitives.WriteUInt32LittleEndian(System.Runtime.InteropServices.MemoryMarshal.AsMemory(_record.WrittenMemory).Span, entries);
        return i;
    }

    private void WriteZeroRun(int first, int count)
    {
        WriteU32(_record, (uint)first);
        _record.GetSpan(1)[0] = MigrationWire.EncZero;
        _record.Advance(1);
        WriteU32(_record, (uint)count);
    }

    // The delta cache: one slab of page-sized slots, a slot per page sent with data while there
    // is room (no allocation per page); a slot holds what the target has for that page.
    private Span<byte> Cached(int index) => _slot![index] == 0 ? [] : _cache.AsSpan((_slot[index] - 1) * GuestMemory.PageSize, GuestMemory.PageSize);

    private void ForgetCached(int index)
    {
        if (_slot is not null && _slot[index] != 0)
            Cached(index).Clear(); // the target now has zeros there: still a valid base for a delta
    }

    // Copies the page straight into the record (the one stable copy: the guest may be writing
    // it meanwhile), then replaces it there with a delta or its LZ4 form when that is smaller.
    private void EncodePage(int index, ReadOnlySpan<byte> live)
    {
        var entry = _record.GetSpan(9 + GuestMemory.PageSize);
        BinaryPrimitives.WriteUInt32LittleEndian(entry, (uint)index);
        var page = entry.Slice(9, GuestMemory.PageSize);
        live.CopyTo(page);
        byte encoding = MigrationWire.EncRaw;
        ReadOnlySpan<byte> smaller = default;
        if (!_noDelta && _options.DeltaCacheBytes >= GuestMemory.PageSize)
        {
            if (_slot is null)
            {
                int slots = (int)Math.Min(_options.DeltaCacheBytes / GuestMemory.PageSize, _guest.Machine.Memory.PageCount);
                _slot = new int[_guest.Machine.Memory.PageCount];
                _cache = GC.AllocateUninitializedArray<byte>(slots * GuestMemory.PageSize);
            }
            var previous = Cached(index);
            if (!previous.IsEmpty)
            {
                // A page sent before: its XOR with the copy the target has is mostly zero when the
                // guest changed a few words, and LZ4 shrinks that to the changed bytes.
                Xor(page, previous, _xor);
                int d = LZ4Codec.Encode(_xor, _delta, LZ4Level.L00_FAST);
                if (d > 0 && d < GuestMemory.PageSize * 3 / 4)
                {
                    encoding = MigrationWire.EncXorLz4;
                    smaller = _delta.AsSpan(0, d);
                    _delta_++;
                }
                page.CopyTo(previous);
            }
            else if (_bulkDone && _cacheUsed < _cache!.Length / GuestMemory.PageSize)
            {
                // Cached from its second sending on (as QEMU's XBZRLE skips the bulk stage): most
                // pages are sent once, and copying each of them aside would only cost time.
                _slot[index] = ++_cacheUsed;
                page.CopyTo(Cached(index));
            }
        }
        if (encoding == MigrationWire.EncRaw)
        {
            // LZ4 costs ten copies of a page and gains nothing on data that does not compress
            // (encrypted, already compressed, random): after a run of such pages it is only tried
            // on every sixteenth page, until one compresses again.
            int lz4 = 0;
            if (_incompressible < IncompressibleStreak || ++_skipped % 16 == 0)
                lz4 = LZ4Codec.Encode(page, _work, LZ4Level.L00_FAST);
            if (lz4 > 0 && lz4 < GuestMemory.PageSize * 3 / 4)
            {
                encoding = MigrationWire.EncLz4;
                smaller = _work.AsSpan(0, lz4);
                _compressed++;
                _incompressible = 0;
            }
            else
            {
                _raw++;
                if (lz4 != 0)
                    _incompressible++;
            }
        }
        int length = GuestMemory.PageSize;
        if (encoding != MigrationWire.EncRaw)
        {
            smaller.CopyTo(page);
            length = smaller.Length;
        }
        entry[4] = encoding;
        BinaryPrimitives.WriteUInt32LittleEndian(entry[5..], (uint)length);
        _record.Advance(9 + length);
    }

    private static void Xor(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b, Span<byte> into)
    {
        var va = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, System.Numerics.Vector<byte>>(a);
        var vb = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, System.Numerics.Vector<byte>>(b);
        var vo = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, System.Numerics.Vector<byte>>(into);
        for (int i = 0; i < vo.Length; i++)
            vo[i] = va[i] ^ vb[i];
    }

    private static void WriteU32(System.Buffers.ArrayBufferWriter<byte> s, uint v)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(s.GetSpan(4), v);
        s.Advance(4);
    }
}
