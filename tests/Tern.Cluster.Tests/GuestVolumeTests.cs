// Guest disks that are logical volumes (lv:VG/LV): the hypervisor opens them for the guest's
// generation before it boots, keeps them across resets, closes them when the guest ends, refuses
// what it cannot open with the reason, and a migration target opens its generation only once
// the guest runs there. The volumes are real LVs of a real pool (files in a temp dir), opened
// through PoolGuestDisks below; the guest is the disk verifier (src/guests/diskverify).
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Akka.Actor;
using Akka.TestKit.Xunit2;
using Tern.Cluster.Actors;
using Tern.Cluster.Hosting;
using Tern.Cluster.Protocol;
using Tern.Machine.Devices;
using Tern.Storage;
using Tern.Storage.Format;
using Tern.Tests.Shared;
using Xunit.Abstractions;

namespace Tern.Cluster.Tests;

public sealed partial class GuestVolumeTests(ITestOutputHelper output) : TestKit(
    PatientTestKit.With(TernHocon.Build(new TernNodeOptions { DataDir = Path.GetTempPath(), SerializeAllMessages = true })), "volume-test", output), IAsyncLifetime
{
    private const ulong Mib = 1UL << 20;
    private readonly string _dir = Directory.CreateTempSubdirectory("tern-guest-volumes-").FullName;
    private StoragePool _pool = null!;
    private PoolGuestDisks _disks = null!;

    public async Task InitializeAsync()
    {
        _pool = await StoragePool.OpenAsync(Path.Combine(_dir, "home"));
        await _pool.CreatePvAsync(Path.Combine(_dir, "pv0.img"), 32L << 20, "node-x");
        await _pool.CreatePvAsync(Path.Combine(_dir, "pv1.img"), 32L << 20, "node-y");
        var vg = await _pool.CreateVgAsync("vg0", [Path.Combine(_dir, "pv0.img"), Path.Combine(_dir, "pv1.img")], 1L << 20);
        await vg.CreateLvAsync("d1", 8L << 20, new LvLayout(SegmentType.Mirror, 2));
        _disks = new PoolGuestDisks(_pool);
    }

    public Task DisposeAsync()
    {
        _pool.Dispose();
        Directory.Delete(_dir, recursive: true);
        return Task.CompletedTask;
    }

    private static VmSpec Verifier(string name, params string[] disks) =>
        new(name, 64 * Mib, 1, ImageRef.FromPath(RepoFiles.Guest("diskverify/diskverify.elf")), null, null, "", disks, null);

    private (IActorRef Hypervisor, Akka.TestKit.TestProbe Controllers) Hypervisor(string host, IGuestDisks? disks)
    {
        var controllers = CreateTestProbe();
        var hypervisor = Sys.ActorOf(Actors.Hypervisor.Props(host, 256 * Mib, 2, controllers, CreateTestProbe(), disks: disks));
        return (hypervisor, controllers);
    }

    [GeneratedRegex(@"^ACK (\d+)$", RegexOptions.Multiline)]
    private static partial Regex Ack();

    private static long LastAck(string text) => Ack().Matches(text).Select(m => long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).DefaultIfEmpty(0).Max();

    // Attaches to the guest's console and reads until `done` holds (bounded: 30 s).
    private string ReadConsole(IActorRef hypervisor, string vm, Func<string, bool> done)
    {
        var console = CreateTestProbe();
        hypervisor.Tell(new AttachConsole(vm), console);
        console.ExpectMsg<ConsoleAttached>(TimeSpan.FromSeconds(10));
        var text = new StringBuilder();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!done(text.ToString()))
        {
            Assert.True(DateTime.UtcNow < deadline, $"{vm}'s console never got there:\n{text}");
            text.Append(Encoding.ASCII.GetString(console.ExpectMsg<ConsoleOutput>(TimeSpan.FromSeconds(10)).Data));
        }
        return text.ToString();
    }

    private void AwaitClosed(int expectedOpen)
    {
        AwaitCondition(() => _disks.OpenCount == expectedOpen, TimeSpan.FromSeconds(10));
    }

    [Fact]
    public void A_guest_on_a_volume_keeps_its_records_across_generations_and_the_volume_closes_when_the_guest_ends()
    {
        var (hypervisor, controllers) = Hypervisor("node-x", _disks);
        hypervisor.Tell(new StartGuest("dv", Verifier("dv", "lv:vg0/d1"), 1, null), TestActor);
        Assert.Equal(new GuestStarted("dv", 1, "node-x"), ExpectMsg<GuestStarted>(TimeSpan.FromSeconds(20)));
        Assert.Equal([("vg0/d1", "dv", 1L)], _disks.Opens);
        string first = ReadConsole(hypervisor, "dv", t => LastAck(t) >= 24);
        Assert.Contains("VERIFY ok last=0 boot=1", first, StringComparison.Ordinal);
        long acked = LastAck(first);

        hypervisor.Tell(new StopGuest("dv", 1, null), TestActor);
        Assert.Equal(new GuestExited("dv", 1, "stopped by the host"), controllers.ExpectMsg<GuestExited>(TimeSpan.FromSeconds(10)));
        AwaitClosed(0);

        hypervisor.Tell(new StartGuest("dv", Verifier("dv", "lv:vg0/d1"), 2, null), TestActor);
        ExpectMsg<GuestStarted>(TimeSpan.FromSeconds(20));
        string second = ReadConsole(hypervisor, "dv", t => t.Contains("boot=2", StringComparison.Ordinal));
        var m = Regex.Match(second, @"VERIFY ok last=(\d+) boot=2");
        Assert.True(m.Success, second);
        Assert.True(long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) >= acked, $"{acked} records were acknowledged: {second}");
        Assert.Equal([("vg0/d1", "dv", 1L), ("vg0/d1", "dv", 2L)], _disks.Opens);
        Assert.Equal(1, _disks.OpenCount);
        hypervisor.Tell(new StopGuest("dv", 2, null), TestActor);
        controllers.ExpectMsg<GuestExited>(TimeSpan.FromSeconds(10));
        AwaitClosed(0);
    }

    [Fact]
    public void Volume_disks_are_refused_with_the_reason_when_they_cannot_be_opened()
    {
        var (bare, _) = Hypervisor("node-x", null);
        bare.Tell(new StartGuest("a", Verifier("a", "lv:vg0/d1"), 1, null), TestActor);
        Assert.Equal("cannot boot: disk lv:vg0/d1 is a logical volume and host 'node-x' has no cluster storage", ExpectMsg<GuestRefused>().Reason);

        var (hypervisor, _) = Hypervisor("node-y", _disks);
        hypervisor.Tell(new StartGuest("b", Verifier("b", "lv:vg0"), 1, null), TestActor);
        Assert.Equal("cannot boot: disk 'lv:vg0' is not a volume name; expected lv:VG/LV", ExpectMsg<GuestRefused>().Reason);
        hypervisor.Tell(new StartGuest("c", Verifier("c", "lv:vg0/nope"), 1, null), TestActor);
        var refused = ExpectMsg<GuestRefused>(TimeSpan.FromSeconds(20));
        Assert.StartsWith("cannot open its disk: ", refused.Reason, StringComparison.Ordinal);
        Assert.Contains("nope", refused.Reason, StringComparison.Ordinal);
        hypervisor.Tell(new PrepareMigration("d", Verifier("d", "lv:vg0/nope"), 2, "node-x", null), TestActor);
        Assert.StartsWith("host 'node-y' cannot take it: cannot find its disk: ", ExpectMsg<MigrationRefused>(TimeSpan.FromSeconds(20)).Reason, StringComparison.Ordinal);

        // Nothing is left reserved: a guest of the whole budget still fits.
        hypervisor.Tell(new StartGuest("e", Verifier("e", "lv:vg0/d1") with { MemoryBytes = 256 * Mib }, 1, null), TestActor);
        ExpectMsg<GuestStarted>(TimeSpan.FromSeconds(20));
        Assert.Equal(1, _disks.OpenCount);
    }

    [Fact]
    public void A_migration_target_opens_the_volume_for_its_generation_only_once_the_guest_runs_there()
    {
        var (source, _) = Hypervisor("node-x", _disks);
        var (target, _) = Hypervisor("node-y", _disks);
        var spec = Verifier("mv", "lv:vg0/d1");
        source.Tell(new StartGuest("mv", spec, 1, null), TestActor);
        ExpectMsg<GuestStarted>(TimeSpan.FromSeconds(20));
        long before = LastAck(ReadConsole(source, "mv", t => LastAck(t) >= 16));

        var controller = CreateTestProbe();
        target.Tell(new PrepareMigration("mv", spec, 2, "node-x", null), controller);
        var prepared = controller.ExpectMsg<MigrationPrepared>(TimeSpan.FromSeconds(20));
        Assert.Equal([("vg0/d1", "mv", 1L)], _disks.Opens); // prepared, not opened: generation 1 still writes

        source.Tell(new MigrateGuest("mv", 1, 2, "node-y", "akka://volume-test", prepared.Endpoint, prepared.Token, MigrationSettings.Default, null), controller);
        controller.FishForMessage(m => m is MigrationCompleted, TimeSpan.FromSeconds(60));
        AwaitCondition(() => _disks.Opens.Count == 2, TimeSpan.FromSeconds(20));
        Assert.Equal(("vg0/d1", "mv", 2L), _disks.Opens[1]);
        AwaitClosed(1); // the source's generation closed its volume

        // The guest goes on writing on the target, after what it acknowledged on the source.
        string after = ReadConsole(target, "mv", t => LastAck(t) > before + 16);
        Assert.DoesNotContain("EIO", after, StringComparison.Ordinal);
        target.Tell(new StopGuest("mv", 2, null), TestActor);
        AwaitClosed(0);

        // A fresh boot finds every record, the ones written on either host.
        source.Tell(new StartGuest("mv", spec, 3, null), TestActor);
        ExpectMsg<GuestStarted>(TimeSpan.FromSeconds(20));
        var m = Regex.Match(ReadConsole(source, "mv", t => t.Contains("boot=", StringComparison.Ordinal)), @"VERIFY ok last=(\d+) boot=2");
        Assert.True(m.Success);
        Assert.True(long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) >= LastAck(after));
    }

    // Opens volumes of one in-process pool, recording each open and counting those not yet closed.
    private sealed class PoolGuestDisks(StoragePool pool) : IGuestDisks
    {
        private readonly List<(string Lv, string VmId, long Generation)> _opens = [];
        private int _open;

        public IReadOnlyList<(string Lv, string VmId, long Generation)> Opens
        {
            get
            {
                lock (_opens)
                    return [.. _opens];
            }
        }

        public int OpenCount => Volatile.Read(ref _open);

        public async Task<long> SizeAsync(string lv, CancellationToken ct)
        {
            var device = await OpenDevice(lv, ct);
            (device as IDisposable)?.Dispose();
            return device.Length;
        }

        public async Task<IBlockBackend> OpenAsync(string lv, string vmId, long generation, CancellationToken ct)
        {
            var device = await OpenDevice(lv, ct);
            lock (_opens)
                _opens.Add((lv, vmId, generation));
            Interlocked.Increment(ref _open);
            return new Backend(device, lv, () => Interlocked.Decrement(ref _open));
        }

        private async Task<IBlockDevice> OpenDevice(string lv, CancellationToken ct)
        {
            string[] parts = lv.Split('/');
            try
            {
                var vg = await pool.OpenVgAsync(parts[0], ct);
                return await vg.OpenDeviceAsync(parts[1], ct);
            }
            catch (StorageException e)
            {
                throw new IOException(e.Message, e);
            }
        }
    }

    private sealed class Backend(IBlockDevice device, string lv, Action closed) : IBlockBackend, IAsyncDisposable
    {
        public long Length => device.Length & ~511L;

        public bool ReadOnly => false;

        public string Id => lv;

        public bool Read(long offset, Span<byte> destination)
        {
            var buffer = new byte[destination.Length];
            if (!Try(() => device.ReadAsync(offset, buffer)))
                return false;
            buffer.CopyTo(destination);
            return true;
        }

        public bool Write(long offset, ReadOnlySpan<byte> data)
        {
            byte[] copy = data.ToArray();
            return Try(() => device.WriteAsync(offset, copy));
        }

        public bool Flush() => Try(() => device.FlushAsync());

        // An I/O error (or a pool closed under a guest at the end of a test) fails the request.
        private static bool Try(Func<ValueTask> io)
        {
            try
            {
                io().AsTask().GetAwaiter().GetResult();
                return true;
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException or StorageException)
            {
                return false;
            }
        }

        public async ValueTask DisposeAsync()
        {
            await device.FlushAsync();
            (device as IDisposable)?.Dispose();
            closed();
        }
    }
}
