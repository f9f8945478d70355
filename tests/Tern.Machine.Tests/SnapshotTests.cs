// Snapshots: a run split by save/restore at any instruction ends bit-identical to an
// uninterrupted one (icount), and damaged files are refused with the reason, loading nothing.
using Tern.Machine.Snapshot;
using Tern.Tests.Shared;

namespace Tern.Machine.Tests;

public sealed class SnapshotTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("tern-snap-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string PathOf(string name) => Path.Combine(_dir, name);

    private static GuestRunOptions Cpubench(ulong maxInstructions) => new()
    {
        Kernel = File.ReadAllBytes(RepoFiles.Guest("bench/cpubench.elf")),
        Clock = ClockMode.Icount,
        MaxInstructions = maxInstructions,
        MemoryBytes = 64UL << 20,
    };

    private static GuestRunOptions OpenSbi() => new()
    {
        Firmware = File.ReadAllBytes(RepoFiles.HostFile(RepoFiles.FwJump, "opensbi")),
        Kernel = File.ReadAllBytes(RepoFiles.Guest("sbi/smp.elf")),
        Clock = ClockMode.Icount,
        MemoryBytes = 64UL << 20,
        Timeout = TimeSpan.FromSeconds(60),
    };

    [Theory]
    [InlineData(1)]
    [InlineData(777_777)]
    [InlineData(2_500_001)]
    public void Split_cpubench_run_ends_bit_identical_to_an_uninterrupted_one(ulong splitAt)
    {
        const ulong Total = 5_000_000;
        var whole = GuestRunner.Run(Cpubench(Total) with { SnapshotTo = PathOf("whole.snap") });
        Assert.Equal(ExitReason.InstructionLimit, whole.Reason);

        var first = GuestRunner.Run(Cpubench(splitAt) with { SnapshotTo = PathOf("half.snap") });
        Assert.Equal(splitAt, first.InstructionsRetired);
        var second = GuestRunner.Run(new GuestRunOptions { RestoreFrom = PathOf("half.snap"), MaxInstructions = Total - splitAt, SnapshotTo = PathOf("resumed.snap") });
        Assert.Equal(Total - splitAt, second.InstructionsRetired);

        Assert.Equal(File.ReadAllBytes(PathOf("whole.snap")), File.ReadAllBytes(PathOf("resumed.snap")));
    }

    [Fact]
    public void Firmware_boot_split_anywhere_prints_the_same_and_ends_in_the_same_state()
    {
        var whole = GuestRunner.Run(OpenSbi() with { SnapshotTo = PathOf("whole.snap") });
        Assert.Equal(ExitReason.PowerOff, whole.Reason);
        foreach (ulong split in new ulong[] { 1_000, 2_000_003, whole.InstructionsRetired - 500 })
        {
            var first = GuestRunner.Run(OpenSbi() with { MaxInstructions = split, SnapshotTo = PathOf("part.snap") });
            var second = GuestRunner.Run(new GuestRunOptions { RestoreFrom = PathOf("part.snap"), SnapshotTo = PathOf("resumed.snap"), Timeout = TimeSpan.FromSeconds(60) });
            Assert.Equal(ExitReason.PowerOff, second.Reason);
            Assert.Equal(whole.ConsoleOutput, first.ConsoleOutput + second.ConsoleOutput);
            Assert.Equal(File.ReadAllBytes(PathOf("whole.snap")), File.ReadAllBytes(PathOf("resumed.snap")));
        }
    }

    [Fact]
    public void Zero_pages_are_left_out_of_the_file()
    {
        GuestRunner.Run(Cpubench(1000) with { SnapshotTo = PathOf("small.snap"), MemoryBytes = 256UL << 20 });
        Assert.True(new FileInfo(PathOf("small.snap")).Length < 1 << 20, "a 256 MiB guest that touched little RAM must snapshot small");
    }

    private byte[] ValidSnapshot()
    {
        GuestRunner.Run(Cpubench(10_000) with { SnapshotTo = PathOf("valid.snap") });
        return File.ReadAllBytes(PathOf("valid.snap"));
    }

    private static string LoadError(byte[] file)
    {
        using var input = new MemoryStream(file);
        var e = Assert.Throws<InvalidSnapshotException>(() => SnapshotFile.Load(input, Stream.Null).Dispose());
        return e.Message;
    }

    [Fact]
    public void Truncated_corrupted_and_wrong_version_files_are_refused_with_the_reason()
    {
        var valid = ValidSnapshot();
        using (var ok = new MemoryStream(valid))
            SnapshotFile.Load(ok, Stream.Null).Dispose();

        Assert.Contains("truncated", LoadError(valid[..(valid.Length / 2)]), StringComparison.Ordinal);
        Assert.Contains("truncated", LoadError(valid[..20]), StringComparison.Ordinal);
        Assert.Contains("bad magic", LoadError([]), StringComparison.Ordinal);
        Assert.Contains("bad magic", LoadError(File.ReadAllBytes(RepoFiles.Guest("hello/hello.elf"))), StringComparison.Ordinal);

        var flipped = (byte[])valid.Clone();
        flipped[valid.Length / 2] ^= 0x40;
        Assert.Contains("checksum", LoadError(flipped), StringComparison.Ordinal);

        var future = (byte[])valid.Clone();
        future[8] = 99;
        Assert.Contains("version 99 is not supported", LoadError(future), StringComparison.Ordinal);

        var extra = valid.Concat(new byte[] { 1, 2, 3 }).ToArray();
        Assert.Contains("end record", LoadError(extra), StringComparison.Ordinal);
    }

    [Fact]
    public void Random_damage_is_always_refused_cleanly()
    {
        var valid = ValidSnapshot();
        var rng = new Random(99);
        for (int i = 0; i < 300; i++)
        {
            var f = (byte[])valid.Clone();
            int cut = rng.Next(2) == 0 ? rng.Next(f.Length) : f.Length;
            f = f[..cut];
            if (f.Length > 0)
                f[rng.Next(f.Length)] ^= (byte)(1 + rng.Next(255));
            LoadError(f);
        }
    }

    [Fact]
    public void Every_hart_field_survives_the_state_codec()
    {
        // Distinct values in every field, so a field the codec drops or swaps shows up.
        var rng = new Random(5);
        ulong R() => (ulong)rng.NextInt64();
        var hart = new Tern.Riscv.HartState
        {
            X = [0, .. Enumerable.Range(1, 31).Select(_ => R())],
            F = [.. Enumerable.Range(0, 32).Select(_ => R())],
            Pc = R(),
            Privilege = Tern.Riscv.Privilege.Supervisor,
            Fcsr = 0xE5,
            Mstatus = R(),
            Medeleg = R(),
            Mideleg = R(),
            Mie = R(),
            Mip = R(),
            Mtvec = R(),
            Mscratch = R(),
            Mepc = R(),
            Mcause = R(),
            Mtval = R(),
            Mcounteren = 7,
            Menvcfg = R(),
            Mcountinhibit = 5,
            Stvec = R(),
            Sscratch = R(),
            Sepc = R(),
            Scause = R(),
            Stval = R(),
            Scounteren = 3,
            Senvcfg = R(),
            Satp = R(),
            Stimecmp = R(),
            Mcycle = R(),
            Minstret = R(),
            Pmpcfg = [.. Enumerable.Range(0, 16).Select(_ => R())],
            Pmpaddr = [.. Enumerable.Range(0, 64).Select(_ => R())],
            Reservation = R(),
            WaitingForInterrupt = true,
        };
        using var machine = new VirtMachine(new MachineOptions { MemoryBytes = 16 << 20, Console = Stream.Null });
        var state = machine.CaptureState() with { Harts = [hart] };
        var w = new StateWriter();
        StateCodec.Write(w, state);
        var back = StateCodec.Read(new StateReader(w.ToArray(), "test"), state.Shape);
        Assert.Equal(hart, back.Harts[0]);
        Assert.Equal(hart.Stimecmp, back.Harts[0].Stimecmp);
    }
}
