// Live migration of running guests between two machines in one process, over a real
// loopback TCP connection: transparency (icount runs end bit-identical to unmigrated ones),
// Linux keeping its heartbeat and its dirtied memory intact, and failures that leave the
// guest running exactly once, on the source.
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Tern.Machine;
using Tern.Machine.Snapshot;
using Tern.Tests.Shared;

namespace Tern.Migration.Tests;

public sealed class LiveMigrationTests
{
    private static readonly string LinuxDir = Path.Combine(RepoFiles.Root, "src/guests/linux/out");

    private static BootImages Linux(string args) => new()
    {
        Firmware = File.ReadAllBytes(RepoFiles.HostFile(RepoFiles.FwJump, "opensbi")),
        Kernel = File.ReadAllBytes(Path.Combine(LinuxDir, "Image.gz")),
        Initrd = File.ReadAllBytes(Path.Combine(LinuxDir, "initramfs.cpio.gz")),
        BootArgs = "console=ttyS0 " + args,
    };

    /// <summary>A guest on its thread plus everything it printed, with waits for milestones.</summary>
    private sealed class Guest : IDisposable
    {
        private readonly StringBuilder _text = new();
        private readonly List<(string Pattern, TaskCompletionSource Seen)> _waits = [];
        private readonly List<(string Pattern, TaskCompletionSource Paused)> _pauses = [];

        public Guest(MachineThread thread)
        {
            Thread = thread;
            thread.ConsoleOutput += bytes =>
            {
                lock (_text)
                {
                    _text.Append(Encoding.ASCII.GetString(bytes.Span));
                    foreach (var (p, seen) in _waits)
                    {
                        if (_text.ToString().Contains(p, StringComparison.Ordinal))
                            seen.TrySetResult();
                    }
                    foreach (var (p, paused) in _pauses)
                    {
                        // On the guest's own thread: the pause lands within a block of the output.
                        if (!paused.Task.IsCompleted && _text.ToString().Contains(p, StringComparison.Ordinal))
                            _ = thread.PauseAsync().ContinueWith(_ => paused.TrySetResult(), TaskScheduler.Default);
                    }
                }
            };
        }

        public MachineThread Thread { get; }

        public Task? PausedAt { get; set; }

        public string Text
        {
            get
            {
                lock (_text)
                    return _text.ToString();
            }
        }

        /// <summary>Pauses the guest as soon as it has printed <paramref name="pattern"/>. Call before it can print it.</summary>
        public Task PauseAt(string pattern)
        {
            var paused = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (_text)
                _pauses.Add((pattern, paused));
            return paused.Task.WaitAsync(TimeSpan.FromSeconds(120));
        }

        public Task Printed(string pattern)
        {
            var seen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (_text)
            {
                _waits.Add((pattern, seen));
                if (_text.ToString().Contains(pattern, StringComparison.Ordinal))
                    seen.TrySetResult();
            }
            return seen.Task.WaitAsync(TimeSpan.FromSeconds(120));
        }

        public void Dispose() => Thread.Dispose();
    }

    private static Guest Boot(BootImages images, ClockMode clock, string? pauseAt = null)
    {
        var thread = new MachineThread(console =>
        {
            var m = new VirtMachine(new MachineOptions { MemoryBytes = 128UL << 20, Clock = clock, Console = console });
            m.Boot(images);
            return m;
        }, "guest");
        var guest = new Guest(thread);
        if (pauseAt is not null)
            guest.PausedAt = guest.PauseAt(pauseAt);
        thread.Start();
        return guest;
    }

    private static VirtMachine Empty(MachineShape shape, Stream console) =>
        new(new MachineOptions { MemoryBytes = shape.MemoryBytes, Harts = shape.Harts, Clock = shape.Clock, Console = console });

    // Moves the guest to a new machine over a fresh loopback TCP connection.
    private static async Task<(Guest Target, MigrationStats Stats)> Migrate(Guest source, Func<Stream, Stream>? sourceWrap = null, Action<Guest>? beforeStart = null, MigrationOptions? options = null)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var accept = listener.AcceptTcpClientAsync();
        using var client = new TcpClient { NoDelay = true };
        await client.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
        using var server = await accept;
        server.NoDelay = true;
        Guest? target = null;
        var receive = Task.Run(async () =>
        {
            await MigrationTarget.ReceiveAsync(server.GetStream(), Empty, "target", beforeStart: t =>
            {
                target = new Guest(t);
                beforeStart?.Invoke(target);
            });
            return target!;
        });
        try
        {
            var channel = sourceWrap is null ? client.GetStream() : sourceWrap(client.GetStream());
            var stats = await new MigrationSource(source.Thread, options).MigrateAsync(channel);
            return (await receive, stats);
        }
        catch
        {
            client.Close();
            try
            {
                (await receive).Dispose();
            }
            catch (InvalidOperationException)
            {
                // the target never got as far as a guest
            }
            catch (MigrationFailedException)
            {
                // the target refused or lost the stream, as the test intends
            }
            catch (IOException)
            {
            }
            throw;
        }
    }

    private static byte[] FinalState(MachineThread thread)
    {
        using var s = new MemoryStream();
        SnapshotFile.Save(thread.Machine, s);
        return s.ToArray();
    }

    [Fact]
    public async Task Linux_migrated_twice_in_icount_mode_ends_bit_identical_to_an_unmigrated_run()
    {
        // In icount mode idle time costs nothing, so the guest is paused at each milestone (at
        // whatever instruction the pause lands on) and migrated from there.
        var images = Linux("tern.poweroff=6");
        byte[] expected;
        string expectedText;
        using (var plain = Boot(images, ClockMode.Icount))
        {
            Assert.Equal(ExitReason.PowerOff, await plain.Thread.Completion.WaitAsync(TimeSpan.FromSeconds(120)));
            expected = FinalState(plain.Thread);
            expectedText = plain.Text;
        }
        Assert.Contains("tern-heartbeat 6 ", expectedText, StringComparison.Ordinal);

        using var first = Boot(images, ClockMode.Icount, pauseAt: "tern-heartbeat 1 ");
        await first.PausedAt!;
        var (second, s1) = await Migrate(first, beforeStart: t => t.PausedAt = t.PauseAt("tern-heartbeat 2 "));
        using (second)
        {
            Assert.Equal(MachineRunState.Stopped, first.Thread.State); // the source let go of it
            await second.PausedAt!;
            var (third, s2) = await Migrate(second);
            using (third)
            {
                Assert.Equal(ExitReason.PowerOff, await third.Thread.Completion.WaitAsync(TimeSpan.FromSeconds(120)));
                Assert.Equal(expectedText, first.Text + second.Text + third.Text);
                Assert.Equal(expected, FinalState(third.Thread));
            }
            Assert.Equal("completed", s1.Status);
            Assert.True(s1.PagesZero > 0 && s2.Rounds >= 2, $"rounds {s2.Rounds}, zero pages {s1.PagesZero}");
            Assert.True(s1.BytesSent < 64L << 20, $"{s1.BytesSent} bytes for a guest with a few MiB in use");
        }
    }

    [Fact]
    public async Task Linux_dirtying_memory_keeps_its_heartbeat_and_its_pages_across_a_migration()
    {
        // The dirtier rewrites 8 MiB at 2,000 pages a second and checks every page it wrote last.
        using var source = Boot(Linux("tern.dirty=8,2000"), ClockMode.Host);
        await source.Printed("tern-heartbeat 2 ");
        var progress = new ConcurrentQueue<MigrationProgress>();
        var (target, stats) = await Migrate(source, options: new MigrationOptions { Progress = new SyncProgress(progress.Enqueue) });
        using (target)
        {
            // Progress came in order: pre-copy rounds, then switchover, then completed with the final byte count.
            var phases = progress.Select(p => p.Phase).ToArray();
            Assert.Equal("precopy", phases[0]);
            Assert.Equal(["switchover", "completed"], phases[^2..]);
            Assert.Equal(stats.BytesSent, progress.Last().BytesSent);
            Assert.True(progress.Zip(progress.Skip(1)).All(p => p.First.Round <= p.Second.Round && p.First.BytesSent <= p.Second.BytesSent));
            // The source may have printed a few more while the migration ran: wait for later ones.
            int last = System.Text.RegularExpressions.Regex.Matches(source.Text, @"tern-heartbeat (\d+) ").Select(m => int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)).DefaultIfEmpty(2).Max();
            try
            {
                await target.Printed($"tern-heartbeat {last + 3} ");
            }
            catch (TimeoutException)
            {
                var probe1 = await target.Thread.InvokeAsync(m => (m.InstructionsRetired, m.Hart.Pc, m.Hart.WaitingForInterrupt, m.Clock.Now, m.Hart.Privilege));
                await Task.Delay(500);
                var probe2 = await target.Thread.InvokeAsync(m => (m.InstructionsRetired, m.Hart.Pc, m.Hart.WaitingForInterrupt, m.Clock.Now, m.Hart.Privilege, m.Hart.TryReadCsr(0x304, out var mie) ? mie : 0, m.Hart.TryReadCsr(0x344, out var mip) ? mip : 0, m.Hart.SupervisorTimerDeadline));
                Assert.Fail($"no heartbeat {last + 3} after migrating ({stats}); probe {probe1} then {probe2}; the target printed:\n{target.Text}");
            }
            Assert.DoesNotContain("FAIL", source.Text + target.Text, StringComparison.Ordinal);
            // The count goes on where the source left it (a line may straddle the move): no beat
            // lost, none printed twice.
            var beats = System.Text.RegularExpressions.Regex.Matches(source.Text + target.Text, @"tern-heartbeat (\d+) ").Select(m => int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
            Assert.Equal(Enumerable.Range(beats[0], beats.Length), beats);
            Assert.True(stats.DowntimeMs < 1000, $"downtime {stats.DowntimeMs} ms");
            Assert.True(stats.PagesCompressed + stats.PagesRaw + stats.PagesDelta > 0);
            // The switchover's timeline: both sides in one process share a clock, so the target's
            // marks (sent back in started) are known. Each side's marks come in order, and each
            // side acts only after it has read what the other sent before.
            var t = stats.Timeline!;
            double[] here = [0, t.GuestParkedMs, t.StateCapturedMs, t.SwitchoverBegunMs, t.FinalPagesSentMs, t.StateSentMs, t.ReadySeenMs, t.GoSentMs, t.StartedSeenMs];
            double[] there = [t.TargetStateReadMs, t.TargetLoadedMs, t.TargetEndReadMs, t.TargetReadySentMs, t.TargetGuestThreadWaitingMs, t.TargetGoReadMs, t.TargetStartedSentMs];
            Assert.True(here.Zip(here.Skip(1)).All(p => p.First <= p.Second), $"source hand-offs out of order: {t}");
            Assert.True(there.Zip(there.Skip(1)).All(p => p.First <= p.Second), $"target hand-offs out of order or unknown: {t}");
            Assert.True(t.FinalPagesSentMs <= t.TargetStateReadMs && t.TargetEndReadMs <= t.ReadySeenMs && t.ReadySeenMs <= t.TargetGoReadMs && t.TargetStartedSentMs <= t.StartedSeenMs, $"{t}");
            Assert.Equal(stats.DowntimeMs, t.StartedSeenMs, 6);
            Assert.Equal(stats.PauseMs, t.GuestParkedMs, 6);
        }
    }

    [Fact]
    public async Task A_corrupted_record_is_refused_and_the_guest_keeps_running_on_the_source()
    {
        using var source = Boot(Linux(""), ClockMode.Icount);
        await source.Printed("tern-heartbeat 1 ");
        var e = await Assert.ThrowsAsync<MigrationFailedException>(() => Migrate(source, s => new Corrupting(s, flipAtByte: 200_000)));
        Assert.Contains("checksum", e.Message, StringComparison.Ordinal);
        Assert.Equal(MachineRunState.Running, source.Thread.State);
        await source.Printed("tern-heartbeat 3 ");
    }

    [Fact]
    public async Task A_connection_lost_mid_stream_leaves_the_guest_on_the_source()
    {
        using var source = Boot(Linux(""), ClockMode.Icount);
        await source.Printed("tern-heartbeat 1 ");
        await Assert.ThrowsAsync<MigrationFailedException>(() => Migrate(source, s => new Corrupting(s, flipAtByte: -1, cutAtByte: 300_000)));
        Assert.Equal(MachineRunState.Running, source.Thread.State);
        await source.Printed("tern-heartbeat 3 ");
    }

    // Flips one byte at a given offset of what the source sends, or closes the connection there.
    private sealed class Corrupting(Stream inner, long flipAtByte, long cutAtByte = -1) : Stream
    {
        private long _written;

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var copy = buffer.ToArray();
            if (flipAtByte >= _written && flipAtByte < _written + copy.Length)
                copy[flipAtByte - _written] ^= 0x5A;
            if (cutAtByte >= 0 && _written + copy.Length > cutAtByte)
            {
                inner.Dispose();
                throw new IOException("connection cut by the test");
            }
            _written += copy.Length;
            await inner.WriteAsync(copy, cancellationToken);
        }

        public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => inner.ReadAsync(buffer, cancellationToken);

        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

        public override void Flush() => inner.Flush();

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

    /// <summary>Reports on the caller's thread, unlike <see cref="Progress{T}"/>, which posts to a context.</summary>
    private sealed class SyncProgress(Action<MigrationProgress> report) : IProgress<MigrationProgress>
    {
        public void Report(MigrationProgress value) => report(value);
    }
}
