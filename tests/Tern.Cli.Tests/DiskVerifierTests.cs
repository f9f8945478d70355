// The disk-verifier guest (src/guests/diskverify) under `tern run --disk`, as child processes:
// records survive a restart, a damaged record and a record from a stale writer are reported
// with their sequence number, and a logical volume of the node's pool works as its disk.
using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Numerics;
using System.Text.RegularExpressions;
using Tern.Tests.Shared;

namespace Tern.Cli.Tests;

[Collection(TernHomeCollection.Name)]
public sealed partial class DiskVerifierTests : IDisposable
{
    private const int Sector = 512;
    private readonly string _dir = Directory.CreateTempSubdirectory("tern-diskverify-").FullName;
    private readonly string? _savedHome = Environment.GetEnvironmentVariable("TERN_HOME");

    public DiskVerifierTests() => Environment.SetEnvironmentVariable("TERN_HOME", Path.Combine(_dir, "home"));

    public void Dispose()
    {
        Environment.SetEnvironmentVariable("TERN_HOME", _savedHome);
        Directory.Delete(_dir, recursive: true);
    }

    private string P(string name) => Path.Combine(_dir, name);

    private static string Verifier => RepoFiles.Guest("diskverify/diskverify.elf");

    [GeneratedRegex(@"VERIFY ok last=(\d+) boot=(\d+)")]
    private static partial Regex VerifyOk();

    [GeneratedRegex(@"^ACK (\d+)$", RegexOptions.Multiline)]
    private static partial Regex Ack();

    // `tern run` of the verifier on `disk` until the console shows `until` (the run stops right
    // there, mid-line); bounded: 30 s of guest run, 60 s in all.
    private static async Task<string> RunVerifierAsync(string disk, string until, params string[] extra)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        psi.Environment["TERN_HOME"] = Environment.GetEnvironmentVariable("TERN_HOME");
        foreach (var a in new[] { typeof(TernApp).Assembly.Location, "run", "--kernel", Verifier, "--mem", "64M", "--disk", disk, "--until", until, "--timeout", "30" }.Concat(extra))
            psi.ArgumentList.Add(a);
        using var child = Process.Start(psi)!;
        var stdout = child.StandardOutput.ReadToEndAsync();
        var stderr = child.StandardError.ReadToEndAsync();
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await child.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            child.Kill(entireProcessTree: true);
            throw new TimeoutException($"tern run on {disk} did not stop within 60 s: {await stdout}");
        }
        string output = await stdout;
        Assert.True(child.ExitCode == 0, $"tern run exited {child.ExitCode} before '{until}': {await stderr}\n{output}");
        return output;
    }

    private static long LastAck(string console) => Ack().Matches(console).Select(m => long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).DefaultIfEmpty(0).Max();

    private static (long Last, long Boot) Verified(string console)
    {
        var m = VerifyOk().Match(console);
        Assert.True(m.Success, $"no 'VERIFY ok' line in: {console}");
        return (long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), long.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture));
    }

    // The record layout of diskverify.c: magic, seq, boot, payload, CRC32C of bytes 0..507.
    private static uint Crc32C(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFFu;
        foreach (byte b in data)
            crc = BitOperations.Crc32C(crc, b);
        return ~crc;
    }

    private static byte[] ReadRecord(string image, long seq)
    {
        using var f = File.OpenHandle(image);
        var record = new byte[Sector];
        RandomAccess.Read(f, record, seq * Sector);
        return record;
    }

    private static void WriteRecord(string image, long seq, byte[] record)
    {
        using var f = File.OpenHandle(image, FileMode.Open, FileAccess.ReadWrite);
        RandomAccess.Write(f, record, seq * Sector);
    }

    [Fact]
    public async Task Acknowledged_records_survive_a_restart_and_damage_is_reported_with_its_seq()
    {
        string disk = P("disk.img");
        using (var f = File.Create(disk))
            f.SetLength(1 << 20);

        string first = await RunVerifierAsync(disk, "ACK 40");
        Assert.Equal((0, 1), Verified(first));
        Assert.Contains("ACK 8\n", first, StringComparison.Ordinal);
        long acked = LastAck(first);
        Assert.True(acked >= 40, first);

        string second = await RunVerifierAsync(disk, "ACK "); // stops once the first batch of boot 2 is flushed
        var (last, boot) = Verified(second);
        Assert.True(last >= acked, $"the restart found {last} records, {acked} were acknowledged");
        Assert.Equal(2, boot);

        // The records on disk are what the program says: CRC32C over the first 508 bytes.
        var r17 = ReadRecord(disk, 17);
        Assert.Equal(17UL, BinaryPrimitives.ReadUInt64LittleEndian(r17.AsSpan(8)));
        Assert.Equal(Crc32C(r17.AsSpan(0, 508)), BinaryPrimitives.ReadUInt32LittleEndian(r17.AsSpan(508)));

        // A flipped payload byte in record 17.
        r17[200] ^= 0x40;
        WriteRecord(disk, 17, r17);
        await RunVerifierAsync(disk, "VERIFY bad seq=17 crc");
        r17[200] ^= 0x40;
        WriteRecord(disk, 17, r17);

        // A record with a valid checksum but an older boot than the one before it: what a stale
        // writer (a fenced-off incarnation) would leave behind.
        var r2 = ReadRecord(disk, last + 2);
        Assert.Equal(2UL, BinaryPrimitives.ReadUInt64LittleEndian(r2.AsSpan(16)));
        BinaryPrimitives.WriteUInt64LittleEndian(r2.AsSpan(16), 1);
        BinaryPrimitives.WriteUInt32LittleEndian(r2.AsSpan(508), Crc32C(r2.AsSpan(0, 508)));
        WriteRecord(disk, last + 2, r2);
        await RunVerifierAsync(disk, $"VERIFY bad seq={last + 2} boot");
    }

    [Fact]
    public async Task The_legacy_interface_works_and_a_full_disk_stops_the_writes()
    {
        string disk = P("small.img");
        using (var f = File.Create(disk))
            f.SetLength(16 * Sector); // 15 records after the reserved sector 0
        string output = await RunVerifierAsync(disk, "FULL last=15", "--virtio-legacy");
        Assert.Contains("VERIFY ok last=0 boot=1", output, StringComparison.Ordinal);
        Assert.Contains("ACK 8\nACK 15\nFULL last=15", output, StringComparison.Ordinal);
        string again = await RunVerifierAsync(disk, "FULL last=15", "--virtio-legacy");
        Assert.Contains("VERIFY ok last=15 boot=2", again, StringComparison.Ordinal);
        Assert.DoesNotContain("ACK", again, StringComparison.Ordinal);
    }

    [Fact]
    public void A_refused_write_prints_EIO_and_the_guest_writes_no_more()
    {
        string disk = P("ro.img");
        using (var f = File.Create(disk))
            f.SetLength(1 << 20);
        var result = Tern.Machine.GuestRunner.Run(new Tern.Machine.GuestRunOptions
        {
            Kernel = File.ReadAllBytes(Verifier),
            MemoryBytes = 64UL << 20,
            Disks = [disk],
            OpenDisk = path => new Tern.Machine.Devices.Virtio.FileBlockBackend(path, readOnly: true),
            Timeout = TimeSpan.FromSeconds(5), // room for a loaded machine to boot it, and for 30+ batches at 100 ms had it carried on
        });
        Assert.Equal(Tern.Machine.ExitReason.Timeout, result.Reason);
        Assert.Contains("VERIFY ok last=0 boot=1\nEIO seq=1\n", result.ConsoleOutput, StringComparison.Ordinal);
        Assert.DoesNotContain("ACK", result.ConsoleOutput, StringComparison.Ordinal);
        Assert.Single(Regex.Matches(result.ConsoleOutput, "EIO"));
    }

    [Fact]
    public async Task A_logical_volume_of_the_pool_holds_the_records()
    {
        var output = new StringWriter();
        var error = new StringWriter();
        foreach (var args in new[]
        {
            new[] { "pv", "create", P("pv0.img"), "--size", "64M" },
            ["pv", "create", P("pv1.img"), "--size", "64M"],
            ["vg", "create", "vg0", P("pv0.img"), P("pv1.img")],
            ["lv", "create", "vg0/d1", "--size", "8M", "--type", "mirror", "--mirrors", "2"],
        })
        {
            Assert.True(TernApp.Invoke(args, output, error) == 0, $"tern {string.Join(' ', args)}: {error}");
        }
        string first = await RunVerifierAsync("lv:vg0/d1", "ACK 24");
        Assert.Equal((0, 1), Verified(first));
        string second = await RunVerifierAsync("lv:vg0/d1", "boot=2");
        Assert.True(Verified(second).Last >= LastAck(first), second);
    }
}
