// `tern lv repair` as a user meets it: a mirror leg whose PV file is gone is rebuilt on the PV of
// the host holding no other copy, the data survives, and wrong input is one line that changes nothing.
using System.Text.Json;
using Tern.Tests.Shared;

namespace Tern.Cli.Tests;

[Collection(TernHomeCollection.Name)]
public sealed class LvRepairCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("tern-repair-cli-").FullName;
    private readonly string? _savedHome = Environment.GetEnvironmentVariable("TERN_HOME");

    public LvRepairCliTests() => Environment.SetEnvironmentVariable("TERN_HOME", Path.Combine(_dir, "home"));

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

    private static string[] Devices(string lv)
    {
        using var doc = JsonDocument.Parse(Ok("lv", "list", "--json"));
        var row = doc.RootElement.GetProperty("lvs").EnumerateArray().Single(r => r.GetProperty("lv").GetString() == lv);
        return [.. row.GetProperty("devices").EnumerateArray().Select(d => d.GetString()!)];
    }

    [Fact]
    public void A_leg_whose_PV_is_gone_is_rebuilt_on_the_host_holding_no_other_copy_and_the_data_survives()
    {
        for (int i = 0; i < 3; i++)
            Ok("pv", "create", P($"pv{i}.img"), "--size", "64M", "--host", $"node-{i}");
        Ok("vg", "create", "vg0", P("pv0.img"), P("pv1.img"), P("pv2.img"));
        Ok("lv", "create", "vg0/disk1", "--size", "16M", "--type", "mirror", "--mirrors", "2");
        var image = new byte[12 << 20];
        new Random(7).NextBytes(image);
        File.WriteAllBytes(P("disk.img"), image);
        Ok("lv", "copy", P("disk.img"), "lv:vg0/disk1");
        var legs = Devices("disk1");
        string spare = new[] { P("pv0.img"), P("pv1.img"), P("pv2.img") }.Single(p => !legs.Contains(p));

        // Nothing lost yet: repair says so and changes nothing.
        Assert.Contains("nothing to repair", Ok("lv", "repair", "vg0/disk1"), StringComparison.Ordinal);

        File.Delete(legs[1]); // the disk of that host is gone for good
        var (code, _, err) = Tern("lv", "repair", "vg0/disk1", "--max-rate", "fast");
        Assert.Equal((2, "tern lv repair: --max-rate fast: expected a positive size such as 512M or 2G"), (code, err.Trim()));
        Assert.DoesNotContain(spare, Devices("disk1"));

        string report = Ok("lv", "repair", "vg0/disk1", "--max-rate", "64M");
        Assert.Contains($"leg on {legs[1]} (node-", report, StringComparison.Ordinal);
        Assert.Contains($"replaced by {spare} (node-", report, StringComparison.Ordinal);
        Assert.Contains("1 leg(s) rebuilt, 16.00m synchronised", report, StringComparison.Ordinal);
        Assert.Equal([legs[0], spare], Devices("disk1").Order());

        Ok("lv", "copy", "lv:vg0/disk1", P("out.img"), "--count", image.Length.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(image, File.ReadAllBytes(P("out.img")));
        Assert.Contains("0 unrepairable", Ok("lv", "scrub", "vg0/disk1"), StringComparison.Ordinal);
    }

    [Fact]
    public void Repair_of_a_linear_volume_is_refused_in_one_line()
    {
        Ok("pv", "create", P("pv0.img"), "--size", "32M");
        Ok("vg", "create", "vg0", P("pv0.img"));
        Ok("lv", "create", "vg0/plain", "--size", "8M");
        var (code, output, err) = Tern("lv", "repair", "vg0/plain");
        Assert.Equal((2, "", "tern lv repair: vg0/plain is not mirrored: only a mirror leg can be rebuilt from another copy"), (code, output, err.Trim()));
    }

    [Fact]
    public void Bench_resync_copies_only_the_dirty_regions_and_then_the_whole_leg()
    {
        using var doc = JsonDocument.Parse(Ok("bench", "resync", "--dir", _dir, "--size", "32M", "--dirty", "10%", "--json"));
        var r = doc.RootElement;
        Assert.Equal((32L << 20, 16L, 2L), (r.GetProperty("sizeBytes").GetInt64(), r.GetProperty("regions").GetInt64(), r.GetProperty("dirtyRegions").GetInt64()));
        Assert.Equal(2L * (2 << 20), r.GetProperty("dirtyBytes").GetInt64());
        Assert.Equal(32L << 20, r.GetProperty("fullBytes").GetInt64());
        Assert.True(r.GetProperty("dirtySeconds").GetDouble() > 0 && r.GetProperty("fullSeconds").GetDouble() > 0);
        Assert.Empty(Directory.GetDirectories(_dir, "tern-resync-bench-*"));

        var (code, _, err) = Tern("bench", "resync", "--dir", _dir, "--dirty", "0%");
        Assert.Equal((2, "tern bench resync: --dirty 0%: expected a share of the regions such as 1% (above 0, at most 100)"), (code, err.Trim()));
    }
}
