// `tern vg reduce VG --remove-missing [--force]` on real PV files in a temp TERN_HOME: a PV whose
// file is gone for good is dropped; a mirror loses its leg there and gets it back with
// `lv convert`; an LV whose only copy was there makes the request refused (nothing changed)
// unless --force, which removes that LV.
using System.Text.Json;

namespace Tern.Cli.Tests;

[Collection(TernHomeCollection.Name)]
public sealed class VgRemoveMissingTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("tern-removemissing-").FullName;
    private readonly string? _savedHome = Environment.GetEnvironmentVariable("TERN_HOME");

    public VgRemoveMissingTests() => Environment.SetEnvironmentVariable("TERN_HOME", Path.Combine(_dir, "home"));

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

    private static Dictionary<string, JsonElement> Lvs()
    {
        using var doc = JsonDocument.Parse(Ok("lv", "list", "--json"));
        return doc.RootElement.GetProperty("lvs").EnumerateArray().ToDictionary(l => l.GetProperty("lv").GetString()!, l => l.Clone());
    }

    private static long Seqno()
    {
        using var doc = JsonDocument.Parse(Ok("vg", "list", "--json"));
        return doc.RootElement.GetProperty("vgs")[0].GetProperty("seqno").GetInt64();
    }

    [Fact]
    public void A_missing_pv_is_dropped_mirrors_lose_their_leg_and_an_lv_with_its_only_copy_there_needs_force()
    {
        for (int i = 0; i < 3; i++)
            Ok("pv", "create", P($"pv{i}.img"), "--size", "64M");
        // m1's legs and l1 on pv0 and pv1 (the only PVs at first); pv2 joins empty.
        Ok("vg", "create", "vg0", P("pv0.img"), P("pv1.img"));
        Ok("lv", "create", "vg0/m1", "--size", "8M", "--type", "mirror");
        Ok("lv", "create", "vg0/l1", "--size", "4M");
        Ok("vg", "extend", "vg0", P("pv2.img"));
        var image = new byte[8 << 20];
        new Random(9).NextBytes(image);
        File.WriteAllBytes(P("m1.img"), image);
        Ok("lv", "copy", P("m1.img"), "lv:vg0/m1");
        Assert.Equal("Volume group \"vg0\" has no missing physical volumes; nothing changed.\n", Ok("vg", "reduce", "vg0", "--remove-missing"));

        // The PV holding l1 (and one of m1's legs) is gone for good.
        string lost = Lvs()["l1"].GetProperty("devices")[0].GetString()!;
        File.Delete(lost);
        long before = Seqno();
        var refused = Tern("vg", "reduce", "vg0", "--remove-missing");
        Assert.Equal((2, ""), (refused.Code, refused.Out));
        Assert.StartsWith("tern vg reduce: vg0/l1 would lose data: its only copy of extents 0-0 is on ", refused.Err, StringComparison.Ordinal);
        Assert.Contains("nothing changed (--force removes such logical volumes", refused.Err, StringComparison.Ordinal);
        Assert.Single(refused.Err.TrimEnd('\n').Split('\n'));
        Assert.Equal(before, Seqno());
        Assert.Equal(["l1", "m1"], Lvs().Keys.Order());

        // Wrong spellings are refused too.
        Assert.Equal(2, Tern("vg", "reduce", "vg0").Code);
        Assert.Equal(2, Tern("vg", "reduce", "vg0", P("pv2.img"), "--remove-missing").Code);
        Assert.Equal(2, Tern("vg", "reduce", "vg0", P("pv2.img"), "--force").Code);

        string done = Ok("vg", "reduce", "vg0", "--remove-missing", "--force");
        Assert.Contains("vg0/m1: lost 1 mirror leg(s) with the missing PVs; 1 copy left", done, StringComparison.Ordinal);
        Assert.Contains("vg0/l1: removed (its only copy of extents 0-0 is on ", done, StringComparison.Ordinal);
        Assert.Contains("Volume group \"vg0\" successfully reduced: missing ", done, StringComparison.Ordinal);
        Assert.EndsWith($"{lost} removed.\n", done, StringComparison.Ordinal); // HOST:PATH
        var lvs = Lvs();
        Assert.Equal(["m1"], lvs.Keys);
        Assert.Equal(1, lvs["m1"].GetProperty("areas").GetInt32());
        Assert.Equal(JsonValueKind.Null, lvs["m1"].GetProperty("degraded").ValueKind); // nothing missing any more
        using (var vgs = JsonDocument.Parse(Ok("vg", "list", "--json")))
            Assert.Equal(2, vgs.RootElement.GetProperty("vgs")[0].GetProperty("pvs").GetInt32());

        // The mirror gets its second copy back on pv2, and holds the data it had.
        Ok("lv", "convert", "vg0/m1", "--mirrors", "2");
        Assert.Equal(2, Lvs()["m1"].GetProperty("areas").GetInt32());
        Assert.Contains(P("pv2.img"), Lvs()["m1"].GetProperty("devices").EnumerateArray().Select(d => d.GetString()), StringComparer.Ordinal);
        Ok("lv", "copy", "lv:vg0/m1", P("back.img"));
        Assert.Equal(image, File.ReadAllBytes(P("back.img")));
        Ok("lv", "scrub", "vg0/m1");
    }
}
