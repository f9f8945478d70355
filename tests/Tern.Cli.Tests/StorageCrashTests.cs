// Crash tests with real processes: `tern pvmove` and metadata-changing verbs run as child
// processes and are killed (SIGKILL) at seeded random moments; the next command must find a
// consistent pool, finish the move from its last checkpoint, and every byte must be intact.
using System.Diagnostics;

namespace Tern.Cli.Tests;

[Collection(TernHomeCollection.Name)]
public sealed class StorageCrashTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("tern-storage-crash-").FullName;
    private readonly string? _savedHome = Environment.GetEnvironmentVariable("TERN_HOME");

    public StorageCrashTests() => Environment.SetEnvironmentVariable("TERN_HOME", Path.Combine(_dir, "home"));

    public void Dispose()
    {
        Environment.SetEnvironmentVariable("TERN_HOME", _savedHome);
        Directory.Delete(_dir, recursive: true);
    }

    private string P(string name) => Path.Combine(_dir, name);

    private static string Ok(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = TernApp.Invoke(args, output, error);
        Assert.True(code == 0, $"tern {string.Join(' ', args)} exited {code}: {error}");
        return output.ToString();
    }

    // Starts `tern args...` as a child process and kills it after `delay` (if still running).
    private static async Task<bool> RunAndKillAsync(TimeSpan delay, params string[] args) => (await RunChildAsync(delay, null, args)).Killed;

    // The newest metadata sequence number on a PV file, read without opening the pool.
    private static long Seqno(string path)
    {
        using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        var block = new byte[4096];
        f.ReadExactly(block);
        var label = Tern.Storage.Format.PvLabel.Decode(block, path);
        long best = -1;
        var slot = new byte[label.MetadataSlotSize];
        for (int i = 0; i < label.MetadataSlots; i++)
        {
            f.Position = label.MetadataOffset + ((long)i * label.MetadataSlotSize);
            f.ReadExactly(slot);
            if (Tern.Storage.Format.MetadataSlot.TryDecode(slot, label.Id, i) is { } copy)
                best = Math.Max(best, copy.Seqno);
        }
        return best;
    }

    // Starts `tern args...` and kills it once `killWhen` says so (polled every few milliseconds),
    // or after `delay`.
    private static async Task<(bool Killed, TimeSpan Took)> RunChildAsync(TimeSpan delay, Func<bool>? killWhen, params string[] args)
    {
        var clock = Stopwatch.StartNew();
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(typeof(TernApp).Assembly.Location);
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        using var child = Process.Start(psi)!;
        var drainOut = child.StandardOutput.ReadToEndAsync();
        var drainErr = child.StandardError.ReadToEndAsync();
        bool killed = false;
        var deadline = clock.Elapsed + delay;
        while (!child.HasExited && clock.Elapsed < deadline && !(killWhen?.Invoke() ?? false))
            child.WaitForExit(TimeSpan.FromMilliseconds(2));
        if (!child.HasExited)
        {
            child.Kill(entireProcessTree: true);
            killed = true;
        }
        await child.WaitForExitAsync();
        await Task.WhenAll(drainOut, drainErr);
        return (killed, clock.Elapsed);
    }

    [Fact]
    public async Task Pvmove_killed_at_random_moments_resumes_and_loses_nothing()
    {
        for (int i = 0; i < 3; i++)
            Ok("pv", "create", P($"pv{i}.img"), "--size", "160M");
        Ok("vg", "create", "vg0", P("pv0.img"), P("pv1.img"), P("pv2.img"), "--extent-size", "1M");
        Ok("lv", "create", "vg0/m", "--size", "48M", "--type", "mirror", "--mirrors", "2");
        Ok("lv", "create", "vg0/l", "--size", "96M");
        var images = new Dictionary<string, byte[]>();
        foreach (var (name, size) in new[] { ("m", 48 << 20), ("l", 96 << 20) })
        {
            images[name] = new byte[size];
            new Random(name[0]).NextBytes(images[name]);
            File.WriteAllBytes(P($"{name}.img"), images[name]);
            Ok("lv", "copy", P($"{name}.img"), $"lv:vg0/{name}");
        }

        var rng = new Random(424242);
        int kills = 0;
        for (int round = 0; round < 6; round++)
        {
            // Alternate the direction so that there is always something to move. The move commits
            // twice per 2-extent chunk (70 commits or more); the child is killed after a
            // random number of them, plus a random few milliseconds, so the kill lands anywhere
            // in a chunk: before, during or after its copy.
            string from = round % 2 == 0 ? "pv0.img" : "pv1.img";
            long start = Seqno(P("pv2.img"));
            long target = start + rng.Next(1, 60);
            var extra = TimeSpan.FromMilliseconds(rng.Next(0, 20));
            TimeSpan? seen = null;
            var clock = Stopwatch.StartNew();
            bool KillNow()
            {
                if (seen is null && Seqno(P("pv2.img")) >= target)
                    seen = clock.Elapsed;
                return seen is { } t && clock.Elapsed >= t + extra;
            }
            var (killed, _) = await RunChildAsync(TimeSpan.FromMinutes(2), KillNow, "pvmove", P(from), "--chunk-extents", "2");
            if (killed)
                kills++;
            Ok("pvmove", P(from)); // resumes whatever the killed run left half done
            foreach (var (name, image) in images)
            {
                Ok("lv", "copy", $"lv:vg0/{name}", P("out.img"));
                Assert.True(image.AsSpan().SequenceEqual(File.ReadAllBytes(P("out.img"))), $"round {round}: {name} differs");
            }
            Assert.DoesNotContain(P(from), Ok("lv", "list"), StringComparison.Ordinal);
        }
        Assert.True(kills >= 4, $"only {kills} of 6 runs were killed before finishing");
        Assert.Contains("0 unrepairable", Ok("lv", "scrub", "vg0/m"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Metadata_commands_killed_at_random_moments_leave_a_consistent_pool()
    {
        for (int i = 0; i < 3; i++)
            Ok("pv", "create", P($"pv{i}.img"), "--size", "64M");
        Ok("vg", "create", "vg0", P("pv0.img"), P("pv1.img"), P("pv2.img"));
        var rng = new Random(99);
        for (int round = 0; round < 6; round++)
        {
            string name = $"v{round}";
            await RunAndKillAsync(TimeSpan.FromMilliseconds(rng.Next(100, 900)), "lv", "create", $"vg0/{name}", "--size", "8M", "--type", "mirror");
            string list = Ok("lv", "list", "--json"); // opens, repairs any PV that missed the commit
            if (list.Contains($"\"{name}\"", StringComparison.Ordinal))
                Ok("lv", "remove", $"vg0/{name}");
            Ok("lv", "create", $"vg0/{name}", "--size", "8M");
        }
        Assert.Equal(6, System.Text.Json.JsonDocument.Parse(Ok("lv", "list", "--json")).RootElement.GetProperty("lvs").GetArrayLength());
    }
}
