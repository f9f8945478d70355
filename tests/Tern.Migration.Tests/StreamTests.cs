// What the version-2 stream carries and refuses: an idle guest's zero pages travel as runs (the
// bytes sent stay close to its non-zero memory), post-copy at once moves the guest before any
// page and sends each page with data exactly once, the switchover's figures say where the
// downtime went, and a target refuses, with a reason, a version-1 hello and a zero run that
// does not fit the guest; and the once-per-process rehearsal that compiles the switchover before a
// real migration needs it completes. Real machines, a real loopback TCP connection.
using System.Buffers.Binary;
using System.IO.Hashing;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Tern.Machine;
using Tern.Machine.Snapshot;
using Tern.Riscv;
using Tern.Tests.Shared;

namespace Tern.Migration.Tests;

// Alone, after the other classes: its settling test must see no migration but its own.
[CollectionDefinition(nameof(StreamTests), DisableParallelization = true)]
public sealed class StreamTestsCollection;

[Collection(nameof(StreamTests))]
public sealed class StreamTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    private static MachineThread Boot(int pagesPerSecond, int workingSet, ulong memory)
    {
        byte[] elf = DirtierGuest.Elf(pagesPerSecond, workingSet);
        var thread = new MachineThread(console =>
        {
            var m = new VirtMachine(new MachineOptions { MemoryBytes = memory, Clock = ClockMode.Host, Console = console });
            m.LoadKernel(elf, htif: false);
            return m;
        }, "source");
        thread.Start();
        return thread;
    }

    private static VirtMachine Empty(MachineShape shape, Stream console) =>
        new(new MachineOptions { MemoryBytes = shape.MemoryBytes, Harts = shape.Harts, Clock = shape.Clock, Console = console });

    private static async Task<(TcpClient Client, TcpClient Server)> Connect()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var accept = listener.AcceptTcpClientAsync();
        var client = new TcpClient { NoDelay = true };
        await client.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
        var server = await accept;
        return (client, server);
    }

    private static long NonZeroBytes(VirtMachine m)
    {
        long pages = 0;
        for (int p = 0; p < m.Memory.PageCount; p++)
        {
            if (m.Memory.Span(m.Memory.Base + ((ulong)p * GuestMemory.PageSize), GuestMemory.PageSize).ContainsAnyExcept((byte)0))
                pages++;
        }
        return pages * GuestMemory.PageSize;
    }

    private static byte[] Hash(GuestMemory memory) => SHA256.HashData(memory.Span(memory.Base, (int)memory.Size));

    // Counts the guest's heartbeats ('H' lines) and notes a FAIL.
    private sealed class Beats
    {
        private int _count, _failed;

        public Beats(MachineThread thread) => thread.ConsoleOutput += bytes =>
        {
            foreach (byte b in bytes.Span)
            {
                if (b == 'H')
                    Interlocked.Increment(ref _count);
                else if (b == 'F')
                    _failed = 1;
            }
        };

        public async Task Wait(int more)
        {
            int goal = Volatile.Read(ref _count) + more;
            var until = DateTime.UtcNow + Bound;
            while (Volatile.Read(ref _count) < goal)
            {
                Assert.True(_failed == 0, "the guest found a page it wrote changed");
                Assert.True(DateTime.UtcNow < until, $"no heartbeat {goal} within {Bound}");
                await Task.Delay(10);
            }
            Assert.True(_failed == 0, "the guest found a page it wrote changed");
        }
    }

    [Fact]
    public async Task The_protocol_is_rehearsed_once_per_process_on_a_tiny_guest_that_moves_completely()
    {
        var rehearsal = MigrationWarmUp.EnsureAsync();
        Assert.Same(rehearsal, MigrationWarmUp.EnsureAsync()); // once per process, whoever asks first
        Assert.True(await rehearsal.WaitAsync(Bound), "the rehearsal migration did not complete");
    }

    [Fact]
    public async Task Settling_the_code_rehearses_more_and_gives_way_at_once_to_a_real_migration()
    {
        // Nothing else in this process settles (only hosts and the bench do), so this test
        // starts it; it runs at least 70 rehearsals unless a real migration begins.
        using var source = Boot(0, 64, 32UL << 20);
        await new Beats(source).Wait(2);
        var settle = MigrationWarmUp.SettleAsync();
        Assert.Same(settle, MigrationWarmUp.SettleAsync()); // once per process
        var until = DateTime.UtcNow + Bound;
        while (MigrationWarmUp.RehearsalsRun < 3)
        {
            Assert.True(DateTime.UtcNow < until, $"settling ran {MigrationWarmUp.RehearsalsRun} rehearsals within {Bound}");
            Assert.False(settle.IsCompleted, "settling ended before its third rehearsal");
            await Task.Delay(5);
        }
        var (client, server) = await Connect();
        using (client)
        using (server)
        {
            var receive = Task.Run(() => MigrationTarget.ReceiveAsync(server.GetStream(), Empty, "target"));
            var migrate = new MigrationSource(source).MigrateAsync(client.GetStream());
            // It stops within the rehearsal under way: long before the 70 it would otherwise run.
            int rehearsals = await settle.WaitAsync(Bound);
            Assert.InRange(rehearsals, 3, 20);
            await migrate.WaitAsync(Bound);
            using var target = await receive.WaitAsync(Bound);
            await new Beats(target).Wait(2);
        }
    }

    [Fact]
    public async Task An_idle_guest_of_256_MiB_sends_at_most_a_tenth_more_than_its_non_zero_memory()
    {
        // 64 pages of data in 65,536: a 5-byte marker per zero page (version 1) would be 320 KiB.
        using var source = Boot(0, 64, 256UL << 20);
        var beats = new Beats(source);
        await beats.Wait(3);
        long nonZero = await source.InvokeAsync(NonZeroBytes);
        var (client, server) = await Connect();
        using (client)
        using (server)
        {
            var receive = Task.Run(() => MigrationTarget.ReceiveAsync(server.GetStream(), Empty, "target"));
            var stats = await new MigrationSource(source).MigrateAsync(client.GetStream()).WaitAsync(Bound);
            using var target = await receive.WaitAsync(Bound);
            var after = new Beats(target);
            Assert.True(stats.BytesSent <= nonZero * 1.1, $"{stats.BytesSent} bytes sent for {nonZero} bytes of non-zero memory");
            Assert.True(stats.PagesZero >= 65_536 - (nonZero / GuestMemory.PageSize), $"{stats.PagesZero} zero pages");
            await after.Wait(3);
        }
    }

    [Fact]
    public async Task Post_copy_at_once_moves_the_guest_before_any_page_and_sends_each_page_with_data_once()
    {
        using var source = Boot(50_000, 1024, 32UL << 20);
        await new Beats(source).Wait(3);
        var (client, server) = await Connect();
        using (client)
        using (server)
        {
            // The target's guest is held (a request blocking its thread, queued before it starts),
            // so that its memory can be compared once every page is in.
            using var hold = new ManualResetEventSlim();
            var receive = Task.Run(() => MigrationTarget.ReceiveAsync(server.GetStream(), Empty, "target", t => _ = t.InvokeAsync(_ => hold.Wait(Bound)), TimeSpan.FromSeconds(10), CancellationToken.None));
            var stats = await new MigrationSource(source, new MigrationOptions { PostCopyAtOnce = true, MaxBandwidth = 8L << 20 }).MigrateAsync(client.GetStream()).WaitAsync(Bound);
            using var target = await receive.WaitAsync(Bound);
            Assert.Equal(MachineRunState.Stopped, source.State);
            long nonZero = NonZeroBytes(source.Machine); // the source stopped at go: the guest's memory then
            Assert.Equal(0, stats.Rounds);
            Assert.Equal(0, target.Machine.Memory.AbsentPages);
            Assert.Equal(Hash(source.Machine.Memory), Hash(target.Machine.Memory)); // its thread is held in a request

            Assert.True(stats.FinalPages >= nonZero / GuestMemory.PageSize, $"{stats.FinalPages} pages left to the target for {nonZero} bytes of data");
            // Each page with data crossed once (raw, as the working set does not compress), no zero page crossed.
            Assert.True(stats.BytesSent <= (nonZero * 1.01) + (64 << 10), $"{stats.BytesSent} bytes sent for {nonZero} bytes of non-zero memory");
            var beats = new Beats(target);
            hold.Set();
            await beats.Wait(5);
        }
    }

    [Fact]
    public async Task Post_copy_at_once_fetches_the_pages_the_running_guest_touches()
    {
        using var source = Boot(50_000, 1024, 32UL << 20);
        await new Beats(source).Wait(3);
        var (client, server) = await Connect();
        using (client)
        using (server)
        {
            Beats? beats = null;
            var receive = Task.Run(() => MigrationTarget.ReceiveAsync(server.GetStream(), Empty, "target", t => beats = new Beats(t), TimeSpan.FromSeconds(10), CancellationToken.None));
            // At 4 MiB/s the background pass needs about a second for the working set: the guest runs into pages first.
            var stats = await new MigrationSource(source, new MigrationOptions { PostCopyAtOnce = true, MaxBandwidth = 4L << 20 }).MigrateAsync(client.GetStream()).WaitAsync(Bound);
            using var target = await receive.WaitAsync(Bound);
            Assert.True(stats.PostCopyPages > 0, $"no page was fetched on demand: {stats}");
            Assert.Equal(0, target.Machine.Memory.AbsentPages);
            await beats!.Wait(10);
        }
    }

    [Fact]
    public async Task The_switchover_figures_say_where_the_downtime_went()
    {
        using var source = Boot(10_000, 1024, 32UL << 20);
        await new Beats(source).Wait(3);
        var (client, server) = await Connect();
        using (client)
        using (server)
        {
            var reports = new List<MigrationProgress>();
            var receive = Task.Run(() => MigrationTarget.ReceiveAsync(server.GetStream(), Empty, "target"));
            // A limit of a second lets it switch over after round 1, leaving what the guest
            // dirtied meanwhile (10 pages a millisecond) to the stop-and-copy.
            var options = new MigrationOptions { DowntimeLimit = TimeSpan.FromSeconds(1), Progress = new SyncProgress(reports.Add) };
            var stats = await new MigrationSource(source, options).MigrateAsync(client.GetStream()).WaitAsync(Bound);
            using var target = await receive.WaitAsync(Bound);
            Assert.True(stats.FinalPages > 0, $"no page in the final copy: {stats}");
            Assert.True(stats.StateCaptureMs > 0 && stats.StateCaptureMs <= stats.FinalCopyMs, $"state capture {stats.StateCaptureMs} of final copy {stats.FinalCopyMs}");
            Assert.True(stats.TargetLoadMs > 0 && stats.TargetApplyMs > 0, $"target load {stats.TargetLoadMs}, apply {stats.TargetApplyMs}");
            Assert.True(stats.EncodeMs > 0 && stats.RoundWaitMs > 0, $"encode {stats.EncodeMs}, round waits {stats.RoundWaitMs}");
            Assert.InRange(stats.PauseMs + stats.FinalCopyMs + stats.AckWaitMs, stats.DowntimeMs - 0.001, stats.DowntimeMs + 0.001);
            Assert.Same(stats, reports[^1].Stats);
            Assert.Equal("completed", reports[^1].Phase);
        }
    }

    [Fact]
    public async Task A_target_refuses_a_version_1_stream_naming_both_versions()
    {
        var (client, server) = await Connect();
        using (client)
        using (server)
        {
            bool built = false;
            var receive = Task.Run(() => MigrationTarget.ReceiveAsync(server.GetStream(), (s, c) =>
            {
                built = true;
                return Empty(s, c);
            }, "target"));
            var shape = new StateWriter();
            StateCodec.Write(shape, new MachineShape(32UL << 20, 1, ClockMode.Host));
            var stream = client.GetStream();
            await WriteRecord(stream, (byte)'H', [.. "TERNMIG1"u8.ToArray(), .. shape.ToArray()]);
            var (type, reason) = await ReadRecord(stream);
            Assert.Equal((byte)'N', type);
            Assert.Contains("version 1", reason, StringComparison.Ordinal);
            Assert.Contains("version 2", reason, StringComparison.Ordinal);
            var e = await Assert.ThrowsAsync<MigrationFailedException>(() => receive.WaitAsync(Bound));
            Assert.Contains("version 1", e.Message, StringComparison.Ordinal);
            Assert.False(built, "the target built a machine for a stream it cannot read");
        }
    }

    [Theory]
    [InlineData(8000, 1000u, "does not fit")] // past the end of 8,192 pages
    [InlineData(10, 0u, "does not fit")]      // an empty run
    public async Task A_target_refuses_a_zero_run_that_does_not_fit_the_guest(int first, uint length, string expected)
    {
        var (client, server) = await Connect();
        using (client)
        using (server)
        {
            var receive = Task.Run(() => MigrationTarget.ReceiveAsync(server.GetStream(), Empty, "target"));
            var shape = new StateWriter();
            StateCodec.Write(shape, new MachineShape(32UL << 20, 1, ClockMode.Host));
            var stream = client.GetStream();
            await WriteRecord(stream, (byte)'H', [.. "TERNMIG2"u8.ToArray(), .. shape.ToArray()]);
            Assert.Equal((byte)'O', (await ReadRecord(stream)).Type);
            var pages = new byte[13];
            BinaryPrimitives.WriteUInt32LittleEndian(pages, 1);
            BinaryPrimitives.WriteUInt32LittleEndian(pages.AsSpan(4), (uint)first);
            pages[8] = 0; // a zero run
            BinaryPrimitives.WriteUInt32LittleEndian(pages.AsSpan(9), length);
            await WriteRecord(stream, (byte)'P', pages);
            var (type, reason) = await ReadRecord(stream);
            Assert.Equal((byte)'N', type);
            Assert.Contains(expected, reason, StringComparison.Ordinal);
            await Assert.ThrowsAsync<MigrationFailedException>(() => receive.WaitAsync(Bound));
        }
    }

    // The wire's record: u8 type | u32 length | u32 CRC32C | payload (docs/migration.md).
    private static async Task WriteRecord(Stream s, byte type, byte[] payload)
    {
        var crc = new Crc32(Crc32ParameterSet.Crc32C);
        crc.Append(payload);
        var record = new byte[9 + payload.Length];
        record[0] = type;
        BinaryPrimitives.WriteUInt32LittleEndian(record.AsSpan(1), (uint)payload.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(record.AsSpan(5), crc.GetCurrentHashAsUInt32());
        payload.CopyTo(record, 9);
        await s.WriteAsync(record);
    }

    private static async Task<(byte Type, string Text)> ReadRecord(Stream s)
    {
        var head = new byte[9];
        await s.ReadExactlyAsync(head).AsTask().WaitAsync(Bound);
        var payload = new byte[BinaryPrimitives.ReadUInt32LittleEndian(head.AsSpan(1))];
        await s.ReadExactlyAsync(payload).AsTask().WaitAsync(Bound);
        return (head[0], Encoding.UTF8.GetString(payload));
    }

    private sealed class SyncProgress(Action<MigrationProgress> report) : IProgress<MigrationProgress>
    {
        public void Report(MigrationProgress value) => report(value);
    }
}
