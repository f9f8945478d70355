// The migration protocol with a bare-metal guest of ours that dirties memory at a chosen rate
// and checks its own pages: convergence at 0 to 50k pages/s (auto-converge where needed),
// post-copy, and a failure injected at every step of the protocol, after which the guest runs
// exactly once, on the right side, with its memory intact. Two machines in one process, over
// a real loopback TCP connection.
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Tern.Machine;
using Tern.Machine.Snapshot;
using Tern.Riscv;
using Tern.Tests.Shared;

namespace Tern.Migration.Tests;

public sealed class ProtocolTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    /// <summary>A dirtier guest on its thread, counting its heartbeats and watching for its FAIL line.</summary>
    private sealed class Dirtier : IDisposable
    {
        private int _beats;
        private int _failed;

        public Dirtier(MachineThread thread)
        {
            Thread = thread;
            thread.ConsoleOutput += bytes =>
            {
                foreach (byte b in bytes.Span)
                {
                    if (b == 'H')
                        Interlocked.Increment(ref _beats);
                    else if (b == 'F')
                        _failed = 1;
                }
            };
        }

        public MachineThread Thread { get; }

        public int Beats => Volatile.Read(ref _beats);

        public bool Failed => Volatile.Read(ref _failed) != 0;

        /// <summary>Waits until <paramref name="more"/> further heartbeats have been printed.</summary>
        public async Task Beat(int more)
        {
            int goal = Beats + more;
            var until = DateTime.UtcNow + Bound;
            while (Beats < goal)
            {
                Assert.False(Failed, "the guest found a page it wrote changed");
                if (DateTime.UtcNow > until)
                    Assert.Fail($"no heartbeat {goal} within {Bound} (state {Thread.State}, beats {Beats})");
                await Task.Delay(10);
            }
            Assert.False(Failed, "the guest found a page it wrote changed");
        }

        public void Dispose() => Thread.Dispose();
    }

    private static Dirtier Boot(int pagesPerSecond, int workingSet, ulong memory)
    {
        byte[] elf = DirtierGuest.Elf(pagesPerSecond, workingSet);
        var thread = new MachineThread(console =>
        {
            var m = new VirtMachine(new MachineOptions { MemoryBytes = memory, Clock = ClockMode.Host, Console = console });
            m.LoadKernel(elf, htif: false);
            return m;
        }, "dirtier");
        var guest = new Dirtier(thread);
        thread.Start();
        return guest;
    }

    private static VirtMachine Empty(MachineShape shape, Stream console) =>
        new(new MachineOptions { MemoryBytes = shape.MemoryBytes, Harts = shape.Harts, Clock = shape.Clock, Console = console });

    private static byte[] Hash(GuestMemory memory) => SHA256.HashData(memory.Span(memory.Base, (int)memory.Size));

    // Everything but the guest clock and the RTC's reading of it, which in host mode move on
    // while the guest is paused.
    private static byte[] StateBytes(VirtMachine m)
    {
        var w = new StateWriter();
        var state = m.CaptureState();
        StateCodec.Write(w, state with { Clock = new GuestClockState(0, 0), Rtc = state.Rtc with { Now = 0 } });
        return w.ToArray();
    }

    /// <summary>Both ends of one migration and what happened to each.</summary>
    private sealed class Run : IDisposable
    {
        public required TcpClient Client { get; init; }
        public required TcpClient Server { get; init; }
        public required CancellationTokenSource TargetCts { get; init; }
        public Task<MachineThread>? Receive { get; set; }
        public Dirtier? Target { get; set; }
        public bool StateMatched { get; set; }
        public string Mismatch { get; set; } = "";
        public ManualResetEventSlim Hold { get; } = new();

        public void KillTarget()
        {
            TargetCts.Cancel();
            Server.Close();
        }

        public void Dispose()
        {
            Hold.Set();
            Client.Dispose();
            Server.Dispose();
            TargetCts.Dispose();
        }
    }

    private static async Task<Run> Connect()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var accept = listener.AcceptTcpClientAsync();
        var client = new TcpClient { NoDelay = true };
        await client.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
        var server = await accept;
        server.NoDelay = true;
        return new Run { Client = client, Server = server, TargetCts = new CancellationTokenSource() };
    }

    // The target side: checks at go, before the guest runs there, that its memory and machine
    // state equal the paused source's bit for bit (pre-copy), and optionally keeps it paused.
    private static void StartTarget(Run run, Dirtier source, Func<MachineShape, Stream, VirtMachine>? build = null, bool postCopy = false, bool holdPaused = false, bool hold = false)
    {
        run.Receive = Task.Run(() => MigrationTarget.ReceiveAsync(run.Server.GetStream(), build ?? Empty, "target", beforeStart: t =>
        {
            if (!postCopy)
            {
                bool memory = Hash(source.Thread.Machine.Memory).AsSpan().SequenceEqual(Hash(t.Machine.Memory));
                byte[] a = StateBytes(source.Thread.Machine), b = StateBytes(t.Machine);
                bool state = a.AsSpan().SequenceEqual(b);
                if (!state)
                    run.Mismatch = $"state lengths {a.Length}/{b.Length}, first difference at {a.AsSpan().CommonPrefixLength(b)}; ";
                run.StateMatched = memory && state;
                run.Mismatch += $"memory equal: {memory}, state equal: {state}";
            }
            // Held by a request that blocks the guest's thread: queued before the target resumes
            // the guest, it runs before any guest instruction, whichever comes first (a pause
            // request could be undone by that resume). Released by run.Hold.
            if (hold)
                _ = t.InvokeAsync(_ => run.Hold.Wait(Bound));
            if (holdPaused)
                _ = t.PauseAsync();
            run.Target = new Dirtier(t);
        }, TimeSpan.FromSeconds(10), run.TargetCts.Token));
    }

    public static TheoryData<int> Rates => [0, 1_000, 10_000, 50_000];

    // A link capped at 10 MiB/s (2,560 pages/s) and pages that do not compress: 50k pages/s
    // dirties twenty times what the link drains (and still more than it even when a busy test
    // machine lets the guest run at a fraction of its pace).
    private static MigrationOptions Capped(bool autoConverge) => new()
    {
        MaxBandwidth = 10L << 20,
        DeltaCacheBytes = 0,
        MaxRounds = 15,
        AutoConverge = autoConverge,
    };

    [Theory]
    [MemberData(nameof(Rates))]
    public async Task A_guest_dirtying_memory_at_this_rate_migrates_and_keeps_its_pages(int pagesPerSecond)
    {
        using var source = Boot(pagesPerSecond, 512, 32UL << 20);
        await source.Beat(3);
        using var run = await Connect();
        StartTarget(run, source);
        var stats = await new MigrationSource(source.Thread, Capped(autoConverge: true)).MigrateAsync(run.Client.GetStream()).WaitAsync(Bound);
        using var target = await run.Receive!.WaitAsync(Bound);
        Assert.Equal(MachineRunState.Stopped, source.Thread.State);
        Assert.True(run.StateMatched, $"the target's memory or machine state differed from the paused source's at go ({run.Mismatch})");
        await run.Target!.Beat(5);
        Assert.True(stats.Converged, $"did not converge: {stats}");
        if (pagesPerSecond == 0)
            Assert.Equal(0, stats.ThrottlePercent);
        if (pagesPerSecond == 50_000)
            Assert.True(stats.ThrottlePercent >= 20, $"50k pages/s converged without a throttle: {stats}");
    }

    [Fact]
    public async Task Without_auto_converge_a_guest_dirtying_50k_pages_a_second_never_converges()
    {
        using var source = Boot(50_000, 512, 32UL << 20);
        await source.Beat(3);
        using var run = await Connect();
        StartTarget(run, source);
        var options = Capped(autoConverge: false);
        var stats = await new MigrationSource(source.Thread, options).MigrateAsync(run.Client.GetStream()).WaitAsync(Bound);
        using var target = await run.Receive!.WaitAsync(Bound);
        // The round limit forced the switchover; the guest still moved intact.
        Assert.False(stats.Converged, $"converged without a throttle: {stats}");
        Assert.Equal(options.MaxRounds + 1, stats.Rounds);
        Assert.Equal(0, stats.ThrottlePercent);
        Assert.True(run.StateMatched);
        await run.Target!.Beat(5);
    }

    [Fact]
    public async Task Throttle_and_progress_report_the_applied_percentage_and_are_removed_on_failure()
    {
        using var source = Boot(50_000, 512, 32UL << 20);
        await source.Beat(3);
        using var run = await Connect();
        StartTarget(run, source);
        var seen = new List<int>();
        using var cts = new CancellationTokenSource();
        var options = Capped(autoConverge: true) with
        {
            Progress = new SyncProgress(p =>
            {
                lock (seen)
                    seen.Add(p.ThrottlePercent);
                if (p.ThrottlePercent >= 40)
                    cts.Cancel();
            }),
        };
        await Assert.ThrowsAsync<MigrationFailedException>(() => new MigrationSource(source.Thread, options).MigrateAsync(run.Client.GetStream(), cts.Token).WaitAsync(Bound));
        lock (seen)
        {
            Assert.Contains(20, seen);
            Assert.Contains(30, seen);
            Assert.True(seen.Zip(seen.Skip(1)).All(p => p.First <= p.Second), string.Join(",", seen));
        }
        Assert.Equal(0, source.Thread.ThrottlePercent);
        Assert.Equal(MachineRunState.Running, source.Thread.State);
        await source.Beat(5);
        await Assert.ThrowsAnyAsync<Exception>(() => run.Receive!.WaitAsync(Bound));
    }

    [Fact]
    public async Task Post_copy_moves_the_guest_after_round_0_with_its_memory_bit_identical()
    {
        // The target is held paused, so that its memory can be compared once every page is in.
        using var source = Boot(50_000, 1024, 32UL << 20);
        await source.Beat(3);
        using var run = await Connect();
        StartTarget(run, source, postCopy: true, hold: true);
        byte[]? atGo = null;
        var migration = new MigrationSource(source.Thread, new MigrationOptions { PostCopy = true, MaxBandwidth = 4L << 20 }).MigrateAsync(run.Client.GetStream());
        using var target = await run.Receive!.WaitAsync(Bound);
        var stats = await migration.WaitAsync(Bound);
        atGo = Hash(source.Thread.Machine.Memory); // the source stopped at go, its memory is the guest's then
        Assert.Equal(0, target.Machine.Memory.AbsentPages);
        // The target's thread is held inside a request: its machine can be read from here.
        Assert.Equal(atGo, Hash(target.Machine.Memory));
        Assert.Equal(StateBytes(source.Thread.Machine), StateBytes(target.Machine));
        Assert.Equal(1, stats.Rounds);
        run.Hold.Set();
        await run.Target!.Beat(5);
    }

    [Fact]
    public async Task Post_copy_fetches_pages_the_running_guest_touches_first()
    {
        using var source = Boot(50_000, 1024, 32UL << 20);
        await source.Beat(3);
        using var run = await Connect();
        StartTarget(run, source, postCopy: true);
        var stats = await new MigrationSource(source.Thread, new MigrationOptions { PostCopy = true, MaxBandwidth = 4L << 20 }).MigrateAsync(run.Client.GetStream()).WaitAsync(Bound);
        using var target = await run.Receive!.WaitAsync(Bound);
        Assert.Equal(MachineRunState.Stopped, source.Thread.State);
        Assert.Equal(0, target.Machine.Memory.AbsentPages);
        // The background pass (at 4 MiB/s, about a second for the working set) is slower than
        // the guest, which runs into pages it has not pushed yet.
        Assert.True(stats.PostCopyPages > 0, $"no page was fetched on demand: {stats}");
        // The guest checks every page it rewrites against what it wrote there before the move.
        await run.Target!.Beat(10);
    }

    [Fact]
    public async Task Post_copy_losing_the_source_midway_loses_the_guest_and_it_runs_nowhere()
    {
        using var source = Boot(50_000, 1024, 32UL << 20);
        await source.Beat(3);
        using var run = await Connect();
        StartTarget(run, source, postCopy: true, holdPaused: true);
        // The link dies at the third page record after go: the target still lacks pages.
        var channel = new Faulty(run.Client.GetStream(), new Trigger(Side.Write, MigrationWireTypes.Go, 1, FaultAction.None));
        channel.After = new Trigger(Side.Write, MigrationWireTypes.Pages, 3, FaultAction.Cut);
        // At 4 MiB/s round 0 takes about a second, in which the guest dirties its whole working
        // set: dozens of page records are left for after go, however fast the machine.
        var e = await Assert.ThrowsAsync<MigrationFailedException>(() => new MigrationSource(source.Thread, new MigrationOptions { PostCopy = true, MaxBandwidth = 4L << 20 }).MigrateAsync(channel).WaitAsync(Bound));
        Assert.Contains("post-copy", e.Message, StringComparison.Ordinal);
        var lost = await Assert.ThrowsAsync<MigrationFailedException>(() => run.Receive!.WaitAsync(Bound));
        Assert.Contains("lost", lost.Message, StringComparison.Ordinal);
        Assert.Equal(MachineRunState.Stopped, source.Thread.State);
        Assert.Equal(MachineRunState.Stopped, run.Target!.Thread.State);
    }

    // Where a fault is injected, and what it is.
    public enum Side { Write, Read }

    public enum FaultAction { None, Cut, Corrupt, Cancel, KillTarget, Stall }

    public sealed record Trigger(Side Side, byte Type, int Occurrence, FaultAction Action);

    /// <summary>The record types of the wire (docs/migration.md).</summary>
    public static class MigrationWireTypes
    {
        public const byte Hello = (byte)'H', Pages = (byte)'P', RoundEnd = (byte)'R', State = (byte)'S', End = (byte)'E', Go = (byte)'G';
        public const byte Prepared = (byte)'O', Ready = (byte)'Y', Started = (byte)'C';
    }

    public static TheoryData<string> Steps =>
    [
        "prepare: target refuses", "prepare: target unreachable", "round 0: connection cut", "round 0: corrupt record",
        "round 0: cancel", "round 0: kill target", "middle round: connection cut", "middle round: corrupt record",
        "middle round: cancel", "middle round: kill target", "switchover: cut during state send", "switchover: corrupt state",
        "switchover: cancel after pause", "switchover: kill target after pause", "commit: target dies before ready",
        "commit: ready lost", "commit: ready never comes (timeout)", "commit: go lost", "commit: started lost",
    ];

    [Theory]
    [MemberData(nameof(Steps))]
    public async Task A_failure_at_each_step_leaves_the_guest_running_exactly_once_with_its_memory_intact(string step)
    {
        using var source = Boot(10_000, 1024, 32UL << 20);
        await source.Beat(3);
        using var run = await Connect();
        using var cancel = new CancellationTokenSource();
        Trigger? trigger = step switch
        {
            "round 0: connection cut" => new(Side.Write, MigrationWireTypes.Pages, 3, FaultAction.Cut),
            "round 0: corrupt record" => new(Side.Write, MigrationWireTypes.Pages, 3, FaultAction.Corrupt),
            "round 0: cancel" => new(Side.Write, MigrationWireTypes.Pages, 3, FaultAction.Cancel),
            "round 0: kill target" => new(Side.Write, MigrationWireTypes.Pages, 3, FaultAction.KillTarget),
            "middle round: connection cut" => new(Side.Write, MigrationWireTypes.RoundEnd, 2, FaultAction.Cut),
            "middle round: corrupt record" => new(Side.Write, MigrationWireTypes.RoundEnd, 2, FaultAction.Corrupt),
            "middle round: cancel" => new(Side.Write, MigrationWireTypes.RoundEnd, 2, FaultAction.Cancel),
            "middle round: kill target" => new(Side.Write, MigrationWireTypes.RoundEnd, 2, FaultAction.KillTarget),
            "switchover: cut during state send" => new(Side.Write, MigrationWireTypes.State, 1, FaultAction.Cut),
            "switchover: corrupt state" => new(Side.Write, MigrationWireTypes.State, 1, FaultAction.Corrupt),
            "switchover: cancel after pause" => new(Side.Write, MigrationWireTypes.End, 1, FaultAction.Cancel),
            "switchover: kill target after pause" => new(Side.Write, MigrationWireTypes.State, 1, FaultAction.KillTarget),
            "commit: target dies before ready" => new(Side.Write, MigrationWireTypes.End, 1, FaultAction.KillTarget),
            "commit: ready lost" => new(Side.Read, MigrationWireTypes.Ready, 1, FaultAction.Cut),
            "commit: ready never comes (timeout)" => new(Side.Read, MigrationWireTypes.Ready, 1, FaultAction.Stall),
            "commit: go lost" => new(Side.Write, MigrationWireTypes.Go, 1, FaultAction.Cut),
            "commit: started lost" => new(Side.Read, MigrationWireTypes.Started, 1, FaultAction.Cut),
            _ => null,
        };
        if (step == "prepare: target unreachable")
            run.Server.Close(); // the target's end is gone before the hello
        else
            StartTarget(run, source, build: step == "prepare: target refuses" ? (_, _) => throw new InvalidOperationException("no room for 32 MiB") : null);
        var channel = new Faulty(run.Client.GetStream(), trigger) { OnCancel = cancel.Cancel, OnKillTarget = run.KillTarget };
        // Every round resends the whole working set (no deltas, 20 MiB/s) and none fits the
        // limit, so the rounds run to the limit, about 0.2 s each. The acknowledgement timeout is
        // one only the stall case waits out: 2 s could let a loaded machine's slow prepare or load
        // time out before the fault under test fires.
        var options = new MigrationOptions { DowntimeLimit = TimeSpan.FromTicks(1), MaxRounds = 4, AckTimeout = TimeSpan.FromSeconds(5), MaxBandwidth = 20L << 20, DeltaCacheBytes = 0 };
        var migration = new MigrationSource(source.Thread, options);
        var e = await Assert.ThrowsAnyAsync<MigrationFailedException>(() => migration.MigrateAsync(channel, cancel.Token).WaitAsync(Bound));
        Assert.True(trigger is null || channel.Fired, $"the fault at {step} never fired; the migration failed with: {e.Message}");
        Exception? targetFailure = null;
        if (run.Receive is not null)
        {
            try
            {
                await run.Receive.WaitAsync(Bound);
            }
            catch (Exception failure) when (failure is MigrationFailedException or IOException or OperationCanceledException or ObjectDisposedException or SocketException)
            {
                targetFailure = failure;
            }
        }
        bool targetRuns = targetFailure is null && run.Receive is not null;
        if (e is MigrationInDoubtException)
        {
            // The caller asks the target (here: in process) and settles it.
            Assert.StartsWith("commit: ", step, StringComparison.Ordinal);
            Assert.Equal(MachineRunState.Paused, source.Thread.State);
            await migration.ResolveInDoubtAsync(targetRuns);
        }
        if (step == "commit: started lost")
        {
            // 'go' arrived: the target owns the guest and the source let go of it.
            Assert.True(targetRuns, $"the target does not run the guest: {targetFailure}");
            Assert.Equal(MachineRunState.Stopped, source.Thread.State);
            Assert.True(run.StateMatched, "the target's memory or state differed from the source's at go");
            await run.Target!.Beat(5);
            run.Target.Dispose();
        }
        else
        {
            Assert.False(targetRuns, "the target runs the guest too");
            Assert.True(run.Target is null || run.Target.Thread.State == MachineRunState.Stopped);
            Assert.Equal(MachineRunState.Running, source.Thread.State);
            Assert.Equal(0, source.Thread.ThrottlePercent);
            await source.Beat(5);
        }
        if (step == "prepare: target refuses")
            Assert.Contains("no room for 32 MiB", e.Message, StringComparison.Ordinal);
    }

    /// <summary>A channel that injects one fault at a given record, sent or received, and optionally a second one later.</summary>
    private sealed class Faulty(Stream inner, Trigger? trigger) : Stream
    {
        private readonly RecordScanner _writes = new(), _reads = new();
        private readonly CancellationTokenSource _disposed = new();
        private Trigger? _trigger = trigger;

        public Action? OnCancel { get; init; }

        public Action? OnKillTarget { get; init; }

        /// <summary>A fault armed once the first one has fired.</summary>
        public Trigger? After { get; set; }

        public bool Fired { get; private set; }

        private bool Matches(Side side, byte type, int count) => _trigger is { } t && t.Side == side && t.Type == type && t.Occurrence == count;

        private FaultAction Fire()
        {
            var action = _trigger!.Action;
            Fired = true;
            _trigger = After;
            if (After is not null)
            {
                _writes.Restart();
                _reads.Restart();
            }
            After = null;
            switch (action)
            {
                case FaultAction.Cancel: OnCancel?.Invoke(); break;
                case FaultAction.KillTarget: OnKillTarget?.Invoke(); break;
            }
            return action;
        }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var copy = buffer.ToArray();
            foreach (var (offset, type, count) in _writes.Scan(copy))
            {
                if (!Matches(Side.Write, type, count))
                    continue;
                var action = Fire();
                if (action == FaultAction.Cut)
                {
                    await inner.WriteAsync(copy.AsMemory(0, offset), cancellationToken);
                    inner.Dispose();
                    throw new IOException("connection cut by the test");
                }
                if (action == FaultAction.Corrupt)
                    copy[offset + 5] ^= 0x5A; // the record's checksum
            }
            await inner.WriteAsync(copy, cancellationToken);
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            int n = await inner.ReadAsync(buffer, cancellationToken);
            foreach (var (_, type, count) in _reads.Scan(buffer.Span[..n].ToArray()))
            {
                if (!Matches(Side.Read, type, count))
                    continue;
                var action = Fire();
                if (action == FaultAction.Cut)
                {
                    inner.Dispose();
                    throw new IOException("connection cut by the test");
                }
                if (action == FaultAction.Stall)
                {
                    using var both = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _disposed.Token);
                    await Task.Delay(Timeout.Infinite, both.Token);
                }
            }
            return n;
        }

        public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

        public override void Flush() => inner.Flush();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _disposed.Cancel();
                inner.Dispose();
            }
            base.Dispose(disposing);
        }

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }

    // Follows record boundaries (u8 type | u32 length | u32 CRC | payload) across writes or reads.
    private sealed class RecordScanner
    {
        private readonly byte[] _head = new byte[9];
        private readonly Dictionary<byte, int> _counts = [];
        private int _headFill;
        private long _payloadLeft;

        /// <summary>Counts occurrences afresh from here.</summary>
        public void Restart() => _counts.Clear();

        /// <summary>The records whose header starts in <paramref name="bytes"/>: offset, type, occurrence (from 1).</summary>
        public List<(int Offset, byte Type, int Count)> Scan(byte[] bytes)
        {
            var found = new List<(int, byte, int)>();
            int i = 0;
            while (i < bytes.Length)
            {
                if (_payloadLeft > 0)
                {
                    int skip = (int)Math.Min(_payloadLeft, bytes.Length - i);
                    _payloadLeft -= skip;
                    i += skip;
                    continue;
                }
                if (_headFill == 0)
                {
                    byte type = bytes[i];
                    _counts[type] = _counts.GetValueOrDefault(type) + 1;
                    found.Add((i, type, _counts[type]));
                }
                _head[_headFill++] = bytes[i++];
                if (_headFill == 9)
                {
                    _headFill = 0;
                    _payloadLeft = BitConverter.ToUInt32(_head, 1);
                }
            }
            return found;
        }
    }

    private sealed class SyncProgress(Action<MigrationProgress> report) : IProgress<MigrationProgress>
    {
        public void Report(MigrationProgress value) => report(value);
    }
}
