// Real Linux (6.1, built by src/guests/linux/build.sh) on Tern: Debian's OpenSBI boots it to
// our init's heartbeat, on one hart and on four, and an ext2 file system on a virtio disk
// keeps its contents across a snapshot and restore of the running guest.
using System.Diagnostics;
using Tern.Tests.Shared;

namespace Tern.Machine.Tests;

public sealed class LinuxGuestTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("tern-linux-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static GuestRunOptions Linux(string bootArgs, ClockMode clock, int harts = 1) => new()
    {
        Firmware = File.ReadAllBytes(RepoFiles.HostFile(RepoFiles.FwJump, "opensbi")),
        Kernel = File.ReadAllBytes(Path.Combine(RepoFiles.Root, "src/guests/linux/out/Image.gz")),
        Initrd = File.ReadAllBytes(Path.Combine(RepoFiles.Root, "src/guests/linux/out/initramfs.cpio.gz")),
        BootArgs = "console=ttyS0 " + bootArgs,
        Clock = clock,
        Harts = harts,
        // Generous for a loaded 2-core CI machine; a quiet one boots in about a second.
        Timeout = TimeSpan.FromSeconds(240),
    };

    private static void AssertReached(GuestRunResult r, string milestone)
    {
        Assert.True(r.Reason == ExitReason.Quit, $"never printed '{milestone}': {r.Message}\n{r.ConsoleOutput}");
        Assert.DoesNotContain("Kernel panic", r.ConsoleOutput, StringComparison.Ordinal);
        Assert.DoesNotContain("FAIL", r.ConsoleOutput, StringComparison.Ordinal);
    }

    [Fact]
    public void Linux_boots_to_its_heartbeat_on_host_time()
    {
        var r = GuestRunner.Run(Linux("", ClockMode.Host) with { StopOnOutput = "tern-heartbeat 2 " });
        AssertReached(r, "tern-heartbeat 2");
        Assert.Contains("Linux version 6.1", r.ConsoleOutput, StringComparison.Ordinal);
        Assert.Contains("ttyS0 at MMIO 0x10000000", r.ConsoleOutput, StringComparison.Ordinal);
        Assert.Contains("goldfish_rtc", r.ConsoleOutput, StringComparison.Ordinal);
        Assert.Contains("tern-heartbeat 1 uptime=", r.ConsoleOutput, StringComparison.Ordinal);
    }

    [Fact]
    public void Linux_brings_up_four_harts()
    {
        var r = GuestRunner.Run(Linux("", ClockMode.Icount, harts: 4) with { StopOnOutput = "tern-heartbeat 2 " });
        AssertReached(r, "tern-heartbeat 2");
        Assert.Contains("smp: Brought up 1 node, 4 CPUs", r.ConsoleOutput, StringComparison.Ordinal);
        Assert.Contains("cpus=0-3", r.ConsoleOutput, StringComparison.Ordinal);
    }

    private string NewExt2Disk()
    {
        string disk = Path.Combine(_dir, "disk.img");
        using (var f = File.Create(disk))
            f.SetLength(32 << 20);
        var psi = new ProcessStartInfo("mke2fs") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "-q", "-t", "ext2", "-F", disk })
            psi.ArgumentList.Add(a);
        try
        {
            using var p = Process.Start(psi)!;
            p.WaitForExit();
            Assert.True(p.ExitCode == 0, p.StandardError.ReadToEnd());
        }
        catch (System.ComponentModel.Win32Exception)
        {
            Assert.Fail("mke2fs is missing: install Debian's 'e2fsprogs' package (.ci/run does)");
        }
        return disk;
    }

    [Fact]
    public void Ext2_files_written_before_a_snapshot_read_back_after_restore()
    {
        string disk = NewExt2Disk();
        string snap = Path.Combine(_dir, "linux.snap");
        // diskcheck "watch": write 64 checksummed records to /mnt/diskcheck.dat on ext2 (vda),
        // then re-read and verify them every 5 seconds.
        var first = GuestRunner.Run(Linux("tern.disk=watch,64,ext2", ClockMode.Icount) with
        {
            Disks = [disk],
            Rng = true,
            StopOnOutput = "diskcheck: OK 64 records written",
            SnapshotTo = snap,
        });
        AssertReached(first, "records written");
        Assert.Contains("virtio_blk virtio", first.ConsoleOutput, StringComparison.Ordinal);
        Assert.Contains("block=vda", first.ConsoleOutput, StringComparison.Ordinal);
        Assert.DoesNotContain("records verified", first.ConsoleOutput, StringComparison.Ordinal);

        var resumed = GuestRunner.Run(new GuestRunOptions
        {
            RestoreFrom = snap,
            Disks = [disk],
            Rng = true,
            StopOnOutput = "diskcheck: OK 64 records verified",
            Timeout = TimeSpan.FromSeconds(240),
        });
        AssertReached(resumed, "records verified");
        Assert.DoesNotContain("Linux version", resumed.ConsoleOutput, StringComparison.Ordinal); // continued, not rebooted
    }

    [Fact]
    public void Restoring_without_the_disk_the_guest_had_is_refused()
    {
        string disk = NewExt2Disk();
        string snap = Path.Combine(_dir, "linux.snap");
        var first = GuestRunner.Run(Linux("", ClockMode.Icount) with { Disks = [disk], StopOnOutput = "tern-heartbeat 1 ", SnapshotTo = snap });
        AssertReached(first, "tern-heartbeat 1");
        var e = Assert.Throws<Snapshot.InvalidSnapshotException>(() => GuestRunner.Run(new GuestRunOptions { RestoreFrom = snap }));
        Assert.Contains("the same --disk", e.Message, StringComparison.Ordinal);
    }
}
