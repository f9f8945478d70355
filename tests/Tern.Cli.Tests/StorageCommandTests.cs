// `tern pv|vg|lv` as a user meets them: the issue's walk-through on real files in a temp
// TERN_HOME, and one-line errors for wrong input that change nothing.
using System.Text.Json;
using Tern.Tests.Shared;

namespace Tern.Cli.Tests;

[Collection(TernHomeCollection.Name)]
public sealed class StorageCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("tern-storage-cli-").FullName;
    private readonly string? _savedHome = Environment.GetEnvironmentVariable("TERN_HOME");

    public StorageCommandTests() => Environment.SetEnvironmentVariable("TERN_HOME", Path.Combine(_dir, "home"));

    public void Dispose()
    {
        Environment.SetEnvironmentVariable("TERN_HOME", _savedHome);
        Directory.Delete(_dir, recursive: true);
    }

    private string P(string name) => Path.Combine(_dir, name);

    private static (int Code, string Out, string Err) Tern(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = TernApp.Invoke(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    private static string Ok(params string[] args)
    {
        var (code, output, err) = Tern(args);
        Assert.True(code == 0, $"tern {string.Join(' ', args)} exited {code}: {err}");
        return output;
    }

    private void ThreePvVg()
    {
        for (int i = 0; i < 3; i++)
            Ok("pv", "create", P($"pv{i}.img"), "--size", "64M");
        Ok("vg", "create", "vg0", P("pv0.img"), P("pv1.img"), P("pv2.img"));
    }

    [Fact]
    public void The_walkthrough_imports_lists_scrubs_and_exports_a_mirrored_disk()
    {
        ThreePvVg();
        Assert.Contains("created", Ok("lv", "create", "vg0/disk1", "--size", "24M", "--type", "mirror", "--mirrors", "2"), StringComparison.Ordinal);
        var image = new byte[(10 << 20) + 1234];
        new Random(3).NextBytes(image);
        File.WriteAllBytes(P("disk.img"), image);
        Assert.Contains("copied", Ok("lv", "copy", P("disk.img"), "lv:vg0/disk1"), StringComparison.Ordinal);

        string table = Ok("lv", "list");
        Assert.Contains("disk1", table, StringComparison.Ordinal);
        Assert.Contains("mirror", table, StringComparison.Ordinal);
        Assert.Contains("24.00m", table, StringComparison.Ordinal);

        using (var doc = JsonDocument.Parse(Ok("lv", "list", "--json")))
        {
            var lv = doc.RootElement.GetProperty("lvs")[0];
            Assert.Equal("disk1", lv.GetProperty("lv").GetString());
            Assert.Equal("vg0", lv.GetProperty("vg").GetString());
            Assert.Equal(24L << 20, lv.GetProperty("size").GetInt64());
            Assert.Equal(2, lv.GetProperty("areas").GetInt32());
        }

        Assert.Contains("0 repaired", Ok("lv", "scrub", "vg0/disk1"), StringComparison.Ordinal);
        Ok("lv", "copy", "lv:vg0/disk1", P("out.img"), "--count", image.Length.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(image, File.ReadAllBytes(P("out.img")));

        string pvs = Ok("pv", "list");
        Assert.Contains("pv0.img", pvs, StringComparison.Ordinal);
        Assert.Contains("vg0", pvs, StringComparison.Ordinal);
        Assert.Contains("vg0", Ok("vg", "list"), StringComparison.Ordinal);
    }

    [Fact]
    public void Striped_and_linear_volumes_are_created_from_the_cli()
    {
        ThreePvVg();
        Ok("lv", "create", "vg0/s", "--size", "30M", "--type", "striped", "--stripes", "3", "--stripe-size", "128K");
        Ok("lv", "create", "vg0/l", "--size", "5M");
        using var doc = JsonDocument.Parse(Ok("lv", "list", "--json"));
        var lvs = doc.RootElement.GetProperty("lvs").EnumerateArray().ToDictionary(e => e.GetProperty("lv").GetString()!);
        Assert.Equal("striped", lvs["s"].GetProperty("type").GetString());
        Assert.Equal(3, lvs["s"].GetProperty("areas").GetInt32());
        Assert.Equal(36L << 20, lvs["s"].GetProperty("size").GetInt64()); // 30M rounded up to 3 stripes of 4M extents
        Assert.Equal(8L << 20, lvs["l"].GetProperty("size").GetInt64());
    }

    [Fact]
    public void Lv_remove_frees_space_and_vg_remove_needs_an_empty_group()
    {
        ThreePvVg();
        Ok("lv", "create", "vg0/a", "--size", "8M");
        var (code, _, err) = Tern("vg", "remove", "vg0");
        Assert.Equal(2, code);
        Assert.Contains("still has 1 logical volume", err, StringComparison.Ordinal);
        (code, _, err) = Tern("pv", "remove", P("pv0.img"));
        Assert.Equal(2, code);
        Assert.Contains("still in volume group vg0", err, StringComparison.Ordinal);
        Ok("lv", "remove", "vg0/a");
        Ok("vg", "reduce", "vg0", P("pv2.img"));
        Ok("vg", "remove", "vg0");
        Ok("pv", "remove", P("pv0.img"));
        Assert.DoesNotContain("pv0.img", Ok("pv", "list"), StringComparison.Ordinal);
        Ok("vg", "create", "vg1", P("pv1.img"), P("pv2.img"));
    }

    [Fact]
    public void Lv_extend_and_reduce_take_absolute_and_relative_sizes()
    {
        ThreePvVg();
        Ok("lv", "create", "vg0/d", "--size", "8M");
        Assert.Contains("from 8.00m to 20.00m", Ok("lv", "extend", "vg0/d", "--size", "+12M"), StringComparison.Ordinal);
        Assert.Contains("to 32.00m", Ok("lv", "extend", "vg0/d", "--size", "32M"), StringComparison.Ordinal);
        Assert.Contains("to 28.00m", Ok("lv", "reduce", "vg0/d", "--size", "-4M"), StringComparison.Ordinal);
        var (code, _, err) = Tern("lv", "reduce", "vg0/d", "--size", "64M");
        Assert.Equal(2, code);
        Assert.Contains("reduce needs a smaller size", err, StringComparison.Ordinal);
    }

    [Fact]
    public void Convert_and_pvmove_keep_an_imported_image_intact()
    {
        ThreePvVg();
        Ok("lv", "create", "vg0/d", "--size", "12M");
        var image = new byte[12 << 20];
        new Random(8).NextBytes(image);
        File.WriteAllBytes(P("disk.img"), image);
        Ok("lv", "copy", P("disk.img"), "lv:vg0/d");
        Assert.Contains("now has 2 copies", Ok("lv", "convert", "vg0/d", "--mirrors", "2"), StringComparison.Ordinal);
        Assert.Contains("mirror", Ok("lv", "list"), StringComparison.Ordinal);
        Assert.Contains("moved", Ok("pvmove", P("pv0.img")), StringComparison.Ordinal);
        using (var doc = JsonDocument.Parse(Ok("lv", "list", "--json")))
        {
            var devices = doc.RootElement.GetProperty("lvs")[0].GetProperty("devices").EnumerateArray().Select(e => e.GetString()).ToList();
            Assert.DoesNotContain(P("pv0.img"), devices);
        }
        Assert.Contains("now has 1 copy", Ok("lv", "convert", "vg0/d", "--mirrors", "1"), StringComparison.Ordinal);
        Ok("lv", "copy", "lv:vg0/d", P("out.img"));
        Assert.Equal(image, File.ReadAllBytes(P("out.img")));
        Ok("vg", "reduce", "vg0", P("pv0.img"));
    }

    [Fact]
    public void The_issue_walkthrough_snapshots_a_mirror_that_then_moves_scrubs_lists_and_is_overwritten()
    {
        ThreePvVg();
        Ok("lv", "create", "vg0/disk1", "--size", "24M", "--type", "mirror", "--mirrors", "2");
        var image = new byte[(10 << 20) + 4321];
        new Random(11).NextBytes(image);
        File.WriteAllBytes(P("disk.img"), image);
        Ok("lv", "copy", P("disk.img"), "lv:vg0/disk1");
        Assert.Contains("\"vg0/disk1-before\" created (snapshot of disk1", Ok("lv", "snapshot", "vg0/disk1", "--name", "disk1-before"), StringComparison.Ordinal);
        Assert.Contains("moved", Ok("pvmove", P("pv0.img")), StringComparison.Ordinal);
        string scrub = Ok("lv", "scrub", "vg0/disk1");
        Assert.Contains("vg0/disk1: ", scrub, StringComparison.Ordinal);
        Assert.Contains("vg0/disk1_snap_tdata: ", scrub, StringComparison.Ordinal); // the snapshot's blocks are scrubbed with it
        Assert.DoesNotContain(" 0 blocks checked", scrub, StringComparison.Ordinal);
        Assert.Equal(3, scrub.Split(", 0 unrepairable.").Length - 1);

        using (var doc = JsonDocument.Parse(Ok("lv", "list", "--json")))
        {
            var lvs = doc.RootElement.GetProperty("lvs").EnumerateArray().ToDictionary(e => e.GetProperty("lv").GetString()!);
            Assert.Equal("snapshot", lvs["disk1-before"].GetProperty("type").GetString());
            Assert.Equal("disk1", lvs["disk1-before"].GetProperty("origin").GetString());
            Assert.Equal("mirror", lvs["disk1"].GetProperty("type").GetString());
            Assert.StartsWith("o", lvs["disk1"].GetProperty("attr").GetString(), StringComparison.Ordinal);
            Assert.Equal("snapshot-store", lvs["disk1_snap"].GetProperty("type").GetString());
            Assert.Equal(2, lvs["disk1_snap_tdata"].GetProperty("areas").GetInt32()); // the snapshot's blocks are mirrored too
            Assert.All(lvs.Values.Where(l => l.TryGetProperty("devices", out _)), l =>
                Assert.DoesNotContain(P("pv0.img"), l.GetProperty("devices").EnumerateArray().Select(d => d.GetString())));
        }

        var newer = new byte[24 << 20];
        new Random(12).NextBytes(newer);
        File.WriteAllBytes(P("newer.img"), newer);
        Ok("lv", "copy", P("newer.img"), "lv:vg0/disk1"); // overwrite the whole origin
        Ok("lv", "copy", "lv:vg0/disk1-before", P("before.img"), "--count", image.Length.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(image, File.ReadAllBytes(P("before.img")));
        Ok("lv", "copy", "lv:vg0/disk1", P("after.img"));
        Assert.Equal(newer, File.ReadAllBytes(P("after.img")));

        var (code, _, err) = Tern("lv", "remove", "vg0/disk1");
        Assert.Equal(2, code);
        Assert.Contains("has 1 snapshot(s): disk1-before; remove them first", err, StringComparison.Ordinal);
        Assert.Contains("its snapshot store disk1_snap is dissolved", Ok("lv", "remove", "vg0/disk1-before"), StringComparison.Ordinal);
        Assert.DoesNotContain("disk1_snap", Ok("lv", "list"), StringComparison.Ordinal);
        Ok("lv", "copy", "lv:vg0/disk1", P("plain.img"));
        Assert.Equal(newer, File.ReadAllBytes(P("plain.img"))); // the origin's data came back into its own extents
        Ok("lv", "remove", "vg0/disk1");
        Assert.DoesNotContain("disk1", Ok("lv", "list"), StringComparison.Ordinal);
    }

    [Fact]
    public void A_volume_created_with_checksums_off_is_listed_and_keeps_its_data()
    {
        ThreePvVg();
        Assert.Contains("checksums off", Ok("lv", "create", "vg0/fast", "--size", "8M", "--checksums", "off"), StringComparison.Ordinal);
        var image = new byte[3 << 20];
        new Random(13).NextBytes(image);
        File.WriteAllBytes(P("img"), image);
        Ok("lv", "copy", P("img"), "lv:vg0/fast");
        Ok("lv", "copy", "lv:vg0/fast", P("out"), "--count", "3M");
        Assert.Equal(image, File.ReadAllBytes(P("out")));
        using var doc = JsonDocument.Parse(Ok("lv", "list", "--json"));
        Assert.False(doc.RootElement.GetProperty("lvs")[0].GetProperty("checksums").GetBoolean());
    }

    [Fact]
    public void Thin_pools_thin_volumes_and_snapshots_from_the_cli()
    {
        ThreePvVg();
        Assert.Contains("Thin pool", Ok("lv", "create", "vg0/pool", "--type", "thin-pool", "--size", "16M"), StringComparison.Ordinal);
        Assert.Contains("virtual", Ok("lv", "create", "vg0/t1", "--thin-pool", "pool", "--size", "1G"), StringComparison.Ordinal);
        var image = new byte[3 << 20];
        new Random(5).NextBytes(image);
        File.WriteAllBytes(P("img"), image);
        Ok("lv", "copy", P("img"), "lv:vg0/t1");
        Assert.Contains("from 1.00g to 2.00g", Ok("lv", "extend", "vg0/t1", "--size", "+1G"), StringComparison.Ordinal);
        Ok("lv", "create", "vg0/t2", "--thin-pool", "pool", "--size", "8M");
        Ok("lv", "copy", P("img"), "lv:vg0/t2");
        Assert.Contains("from 8.00m to 1.00m", Ok("lv", "reduce", "vg0/t2", "--size", "1M"), StringComparison.Ordinal);
        using (var doc = JsonDocument.Parse(Ok("lv", "list", "--json")))
        {
            var t2 = doc.RootElement.GetProperty("lvs").EnumerateArray().First(e => e.GetProperty("lv").GetString() == "t2");
            Assert.Equal(100.0, t2.GetProperty("dataPercent").GetDouble()); // 1 MiB mapped of 1 MiB: the rest was freed
        }
        Ok("lv", "remove", "vg0/t2");
        Assert.Contains("from 16.00m to 24.00m", Ok("lv", "extend", "vg0/pool", "--size", "+8M"), StringComparison.Ordinal);
        Ok("lv", "snapshot", "vg0/t1", "--name", "before");
        Ok("lv", "copy", P("img"), "lv:vg0/t1", "--seek", "1M"); // the origin changes; the snapshot does not
        Ok("lv", "copy", "lv:vg0/before", P("out"), "--count", "3M");
        Assert.Equal(image, File.ReadAllBytes(P("out")));
        using (var doc = JsonDocument.Parse(Ok("lv", "list", "--json")))
        {
            var lvs = doc.RootElement.GetProperty("lvs").EnumerateArray().ToDictionary(e => e.GetProperty("lv").GetString()!);
            Assert.Equal("thin-pool", lvs["pool"].GetProperty("type").GetString());
            Assert.Equal("t1", lvs["before"].GetProperty("origin").GetString());
            Assert.Equal("pool", lvs["t1"].GetProperty("pool").GetString());
            Assert.Equal("thin-data", lvs["pool_tdata"].GetProperty("type").GetString());
        }
        var (code, _, err) = Tern("lv", "copy", P("big"), "lv:vg0/t1");
        Assert.Equal(2, code);
        File.WriteAllBytes(P("big"), new byte[1]);
        var full = new byte[28 << 20];
        new Random(6).NextBytes(full);
        File.WriteAllBytes(P("big"), full);
        (code, _, err) = Tern("lv", "copy", P("big"), "lv:vg0/t1", "--seek", "100M");
        Assert.Equal(2, code); // refused before anything is written
        Assert.Contains("out of space for this copy", err, StringComparison.Ordinal);
        Assert.Contains("nothing was copied", err, StringComparison.Ordinal);
        Assert.Single(err.Trim().Split('\n'));
        Ok("lv", "copy", "lv:vg0/t1", P("untouched"), "--skip", "100M", "--count", "28M");
        Assert.All(File.ReadAllBytes(P("untouched")), b => Assert.Equal(0, b));
        var zeros = new byte[28 << 20];
        File.WriteAllBytes(P("zeros"), zeros);
        Ok("lv", "copy", P("zeros"), "lv:vg0/t1", "--seek", "200M"); // zeros where nothing is mapped take no chunks
        (code, _, err) = Tern("lv", "remove", "vg0/pool");
        Assert.Equal(2, code);
        Assert.Contains("still holds 2 thin volume(s)", err, StringComparison.Ordinal);
        Ok("lv", "remove", "vg0/before");
        Ok("lv", "remove", "vg0/t1");
        Ok("lv", "remove", "vg0/pool");
        Assert.DoesNotContain("pool", Ok("lv", "list"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_volume_serves_as_a_guest_block_backend()
    {
        ThreePvVg();
        Ok("lv", "create", "vg0/disk", "--size", "8M", "--type", "mirror");
        using (var disk = await Commands.VolumeDisk.OpenAsync("lv:vg0/disk"))
        {
            Assert.Equal(8L << 20, disk.Length);
            var sector = new byte[512];
            new Random(1).NextBytes(sector);
            Assert.True(disk.Write(512 * 7, sector)); // sector-sized, unaligned to 4 KiB blocks
            Assert.True(disk.Flush());
            var back = new byte[512];
            Assert.True(disk.Read(512 * 7, back));
            Assert.Equal(sector, back);
            Assert.False(disk.Read(disk.Length, back));
        }
        var err = await Assert.ThrowsAsync<Tern.Storage.StorageException>(() => Commands.VolumeDisk.OpenAsync("lv:vg0/nope"));
        Assert.Contains("not found", err.Message, StringComparison.Ordinal);
    }

    public static TheoryData<string[], string> WrongInput => new()
    {
        { ["lv", "create", "vgX/disk", "--size", "8M"], "volume group vgX not found" },
        { ["lv", "create", "vg0/disk", "--size", "10G"], "not enough free space" },
        { ["lv", "create", "vg0/disk", "--size", "lots"], "--size lots" },
        { ["lv", "create", "vg0/disk", "--size", "8M", "--type", "mirror", "--mirrors", "4"], "4 distinct PVs" },
        { ["lv", "create", "vg0/disk", "--size", "8M", "--type", "raid5"], "--type raid5" },
        { ["lv", "create", "disk", "--size", "8M"], "expected VG/LV" },
        { ["pv", "create", "PLACEHOLDER/x.img", "--size", "12Q"], "--size 12Q" },
        { ["vg", "create", "vg9", "PLACEHOLDER/not-a-pv.img"], "is not a Tern physical volume" },
        { ["vg", "create", "vg0", "PLACEHOLDER/pv0.img"], "already exists" },
        { ["lv", "scrub", "vg0/nope"], "vg0/nope not found" },
        { ["lv", "extend", "vg0/small", "--size", "+10G"], "not enough free space" },
        { ["lv", "extend", "vg0/small", "--size", "-1M"], "takes +SIZE" },
        { ["lv", "convert", "vg0/small", "--mirrors", "4"], "not enough free space" },
        { ["lv", "snapshot", "vg0/nosuch", "--name", "snap"], "logical volume vg0/nosuch not found" },
        { ["lv", "snapshot", "vg0/small", "--name", "small"], "vg0/small already exists" },
        { ["lv", "create", "vg0/x", "--size", "4M", "--checksums", "maybe"], "expected on or off" },
        { ["lv", "reduce", "vg0/small", "--size", "8M"], "reduce needs a smaller size" },
        { ["lv", "create", "vg0/t", "--type", "thin", "--thin-pool", "nopool", "--size", "1G"], "thin pool vg0/nopool not found" },
        { ["pvmove", "PLACEHOLDER/not-a-pv.img"], "is not a Tern physical volume" },
        { ["lv", "copy", "PLACEHOLDER/big.img", "lv:vg0/small"], "more than lv:vg0/small holds" },
    };

    [Theory]
    [MemberData(nameof(WrongInput))]
    public void Wrong_input_gets_a_one_line_error_and_changes_nothing(string[] args, string expected)
    {
        ThreePvVg();
        Ok("lv", "create", "vg0/small", "--size", "4M");
        File.WriteAllBytes(P("not-a-pv.img"), new byte[1 << 20]);
        File.WriteAllBytes(P("big.img"), new byte[5 << 20]);
        string before = Ok("lv", "list", "--json") + Ok("pv", "list", "--json") + Ok("vg", "list", "--json");
        var (code, output, err) = Tern(args.Select(a => a.Replace("PLACEHOLDER", _dir, StringComparison.Ordinal)).ToArray());
        Assert.NotEqual(0, code);
        Assert.Contains(expected, err, StringComparison.Ordinal);
        Assert.Single(err.Trim().Split('\n'));
        Assert.Equal("", output);
        string after = Ok("lv", "list", "--json") + Ok("pv", "list", "--json") + Ok("vg", "list", "--json");
        Assert.Equal(before, after);
        Assert.False(File.Exists(P("x.img")));
    }

    [Fact]
    public void A_pv_that_missed_an_update_is_repaired_when_the_vg_is_next_used()
    {
        ThreePvVg();
        string saved = P("pv2.saved");
        File.Copy(P("pv2.img"), saved);
        Ok("lv", "create", "vg0/a", "--size", "8M");
        File.Copy(saved, P("pv2.img"), overwrite: true); // pv2 "missed" the update
        Ok("lv", "list");
        using var doc = JsonDocument.Parse(Ok("vg", "list", "--json"));
        Assert.Equal(2, doc.RootElement.GetProperty("vgs")[0].GetProperty("seqno").GetInt64());
        Assert.Contains("\"a\"", Ok("lv", "list", "--json"), StringComparison.Ordinal);
    }
    [Fact]
    public void A_logical_volume_is_a_guest_disk_that_linux_writes_and_reads()
    {
        string pv = Path.Combine(_dir, "pv-linux.img");
        Assert.Equal(0, TernApp.Invoke(["pv", "create", pv, "--size", "128M"], TextWriter.Null, TextWriter.Null));
        Assert.Equal(0, TernApp.Invoke(["vg", "create", "vgl", pv], TextWriter.Null, TextWriter.Null));
        Assert.Equal(0, TernApp.Invoke(["lv", "create", "vgl/disk", "--size", "32M"], TextWriter.Null, TextWriter.Null));
        string root = RepoFiles.Root;
        string linux = Path.Combine(root, "src/guests/linux/out");
        string[] boot =
        [
            "run", "--bios", RepoFiles.HostFile(RepoFiles.FwJump, "opensbi"),
            "--kernel", Path.Combine(linux, "Image.gz"), "--initrd", Path.Combine(linux, "initramfs.cpio.gz"),
            "--clock", "icount", "--disk", "lv:vgl/disk", "--timeout", "120",
        ];
        // diskcheck writes 64 checksummed records to the raw disk; a second boot verifies them.
        var err = new StringWriter();
        Assert.Equal(0, TernApp.Invoke([.. boot, "--append", "console=ttyS0 tern.disk=write,64", "--until", "diskcheck: OK 64 records written"], TextWriter.Null, err));
        Assert.Equal(0, TernApp.Invoke([.. boot, "--append", "console=ttyS0 tern.disk=verify,64", "--until", "diskcheck: OK 64 records verified"], TextWriter.Null, err));
        Assert.Equal("", err.ToString());

        var bad = new StringWriter();
        Assert.Equal(2, TernApp.Invoke(["run", "--kernel", Path.Combine(root, "src/guests/bin/hello/hello.elf"), "--disk", "lv:vgl/nope"], TextWriter.Null, bad));
        Assert.Contains("nope", bad.ToString(), StringComparison.Ordinal);
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TernHomeCollection
{
    public const string Name = "TERN_HOME";
}
