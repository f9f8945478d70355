// A rehearsal of the whole migration protocol, once per process: a tiny guest (16 MiB, a loop
// that keeps writing two pages) moves between two machines of this process over a loopback
// TCP connection. The first real migration of a process otherwise pays, inside its downtime,
// for compiling the switchover's code on both sides (the pause request, the final records,
// go, started, the resume), which no earlier phase runs; a rehearsal runs all of it. Hosts
// start it when they start (Tern.Cluster's hypervisor does); the first migration waits for it
// otherwise, before it connects, so the cost lands in setup time, never in downtime.
//
// One rehearsal compiles that code at tier 0. The runtime recompiles a method after 30 calls
// (instrumented, then again at tier 1) on a background thread; code called once per
// migration (the state's getters, the switchover's reads and writes) reaches those counts in
// the 30th and 60th real migrations, and its recompilation then takes a core inside their
// downtime (measured: the slow switchovers were those with compilations in the window). So
// hosts also settle the code: SettleAsync goes on rehearsing, paced, in the background, until
// the counts are passed and the runtime has stopped compiling (at least MinRehearsals, then
// QuietRehearsals in a row that compiled nothing; at most MaxRehearsals or SettleLimit). It
// gives way to real migrations: it stops for good when one begins.
using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Tern.Machine;

namespace Tern.Migration;

/// <summary>Runs the migration protocol on a tiny guest, once and then until its code is settled, so that no real migration pays for compiling it.</summary>
public static class MigrationWarmUp
{
    // Far more than the rehearsal needs (a few tens of milliseconds): a machine too busy to finish
    // it in this time gives up on it, and the migration that waits goes on cold.
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(10);
    private static readonly Lazy<Task<bool>> Once = new(() => Task.Run(() => RunAsync(default)));
    private static readonly Lazy<Task<int>> Settled = new(() => Task.Run(SettleCoreAsync));
    private const int MinRehearsals = 70;
    private const int QuietRehearsals = 10;
    private const int MaxRehearsals = 200;
    private static readonly TimeSpan SettleLimit = TimeSpan.FromSeconds(30);
    // Between settling rehearsals: the host keeps most of a core for its own start.
    private static readonly TimeSpan Pace = TimeSpan.FromMilliseconds(40);
    private static int s_begun;
    private static int s_rehearsed;

    /// <summary>Rehearsals this process has completed so far (the first one and the settling ones).</summary>
    public static int RehearsalsRun => Volatile.Read(ref s_rehearsed);

    /// <summary>
    /// Starts the rehearsal if no one has (it runs once per process); completes when it has ended,
    /// with true when it completed. A rehearsal that fails costs nothing but its time: the real
    /// migration reports its own errors.
    /// </summary>
    public static Task<bool> EnsureAsync() => Once.Value;

    /// <summary>
    /// Starts settling the migration code if no one has (once per process, after the first
    /// rehearsal); completes with the number of rehearsals run when it has ended, which it does
    /// early when a real migration begins.
    /// </summary>
    public static Task<int> SettleAsync() => Settled.Value;

    // Real migrations begun in this process (the settling stops when it sees one more).
    internal static void MigrationBegins() => Interlocked.Increment(ref s_begun);

    private static async Task<int> SettleCoreAsync()
    {
        int begun = Volatile.Read(ref s_begun);
        if (!await EnsureAsync().ConfigureAwait(false))
            return 0;
        using var limit = new CancellationTokenSource(SettleLimit);
        long seen = System.Runtime.JitInfo.GetCompiledMethodCount(currentThread: false);
        int quiet = 0;
        int done = 1;
        while (done < MaxRehearsals && (done < MinRehearsals || quiet < QuietRehearsals) && Volatile.Read(ref s_begun) == begun)
        {
            try
            {
                await Task.Delay(Pace, limit.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
            if (Volatile.Read(ref s_begun) != begun || !await RunAsync(limit.Token).ConfigureAwait(false))
                break;
            done++;
            long now = System.Runtime.JitInfo.GetCompiledMethodCount(currentThread: false);
            quiet = now == seen ? quiet + 1 : 0;
            seen = now;
        }
        return done;
    }

    private static async Task<bool> RunAsync(CancellationToken outer)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(outer);
        limit.CancelAfter(Limit);
        MachineThread? source = null;
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            var accept = listener.AcceptTcpClientAsync(limit.Token);
            using var client = new TcpClient { NoDelay = true };
            await client.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port, limit.Token).ConfigureAwait(false);
            using var server = await accept.ConfigureAwait(false);
            server.NoDelay = true;
            source = new MachineThread(console =>
            {
                var m = new VirtMachine(new MachineOptions { MemoryBytes = VirtMachine.MinMemory, Console = console });
                m.Boot(new BootImages { Kernel = Image() });
                return m;
            }, "migration-warm-up");
            source.Start();
            var receive = MigrationTarget.ReceiveCoreAsync(server.GetStream(),
                (shape, console) => new VirtMachine(new MachineOptions { MemoryBytes = shape.MemoryBytes, Harts = shape.Harts, Clock = shape.Clock, Console = console }),
                "migration-warm-up", _ => { }, Limit, limit.Token);
            await new MigrationSource(source).MigrateCoreAsync(client.GetStream(), limit.Token).ConfigureAwait(false);
            using var target = await receive.ConfigureAwait(false);
            await target.StopAsync().ConfigureAwait(false);
            Interlocked.Increment(ref s_rehearsed);
            return true;
        }
        catch (Exception)
        {
            // Whatever went wrong here, the real migration must not inherit it: it goes on cold.
            return false;
        }
        finally
        {
            source?.Dispose();
        }
    }

    // Bare metal at the RAM base (M-mode): t0 and t2 point at two pages 64 KiB up, and the guest
    // stores a rising count into both forever, so every round has dirty pages and the last ones
    // travel as deltas.
    private static byte[] Image()
    {
        const uint T0 = 5, T1 = 6, T2 = 7, T3 = 28;
        uint[] code =
        [
            (0x10u << 12) | (T0 << 7) | 0x17,                        // 00 auipc t0, 0x10      t0 = RAM + 64 KiB
            (1u << 12) | (T3 << 7) | 0x37,                           // 04 lui   t3, 1         t3 = 4096
            (T3 << 20) | (T0 << 15) | (T2 << 7) | 0x33,              // 08 add   t2, t0, t3    the next page
            (1u << 20) | (T1 << 15) | (T1 << 7) | 0x13,              // 0c addi  t1, t1, 1     loop:
            (T1 << 20) | (T0 << 15) | (3u << 12) | 0x23,             // 10 sd    t1, 0(t0)
            (T1 << 20) | (T2 << 15) | (3u << 12) | 0x23,             // 14 sd    t1, 0(t2)
            0xFF5FF06F,                                              // 18 jal   x0, -12       back to loop
        ];
        var image = new byte[code.Length * 4];
        for (int i = 0; i < code.Length; i++)
            BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(i * 4), code[i]);
        return image;
    }
}
