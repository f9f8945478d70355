// `tern bench extent`: a small real run (extent servers on loopback in-process, real PV files)
// reports every workload on every device and cleans up; bad arguments get a one-line error.
using System.Text.Json;

namespace Tern.Cli.Tests;

public sealed class ExtentBenchTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("tern-extent-bench-test-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static (int Code, string Out, string Err) Tern(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = TernApp.Invoke(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    [Fact]
    public void Bench_extent_measures_local_and_remote_lvs_and_leaves_nothing_behind()
    {
        var (code, output, err) = Tern("bench", "extent", "--dir", _dir, "--size", "16M", "--ops", "200", "--runs", "1", "--json");
        Assert.True(code == 0, $"exit {code}\n{output}\n{err}");
        using var doc = JsonDocument.Parse(output);
        var rows = doc.RootElement.EnumerateArray().Select(r => (Device: r.GetProperty("device").GetString()!, Workload: r.GetProperty("workload").GetString()!, MiBs: r.GetProperty("miBPerSecond").GetDouble())).ToList();
        string[] devices = ["local-linear", "remote-linear", "local-mirror", "remote-mirror"];
        string[] workloads = ["seq-write-1M", "seq-read-1M", "rand-write-64K", "rand-read-64K", "rand-write-4K", "rand-read-4K"];
        Assert.Equal(devices.Length * workloads.Length, rows.Count);
        foreach (var d in devices)
        {
            foreach (var w in workloads)
                Assert.Contains(rows, r => r.Device == d && r.Workload == w && r.MiBs > 0 && double.IsFinite(r.MiBs));
        }
        Assert.Empty(Directory.GetFileSystemEntries(_dir));
    }

    [Theory]
    [InlineData("--size", "3M", "tern bench extent: --size 3M: expected a whole number of MiB between 16M and 64G")]
    [InlineData("--size", "lots", "tern bench extent: --size lots: expected a whole number of MiB between 16M and 64G")]
    [InlineData("--ops", "0", "tern bench extent: --ops 1-1000000, --runs 1-20.")]
    [InlineData("--runs", "99", "tern bench extent: --ops 1-1000000, --runs 1-20.")]
    public void Bench_extent_refuses_bad_arguments_with_one_line(string option, string value, string message)
    {
        var (code, output, err) = Tern("bench", "extent", "--dir", _dir, option, value);
        Assert.Equal((2, message), (code, err.Trim()));
        Assert.Equal("", output);
        Assert.Empty(Directory.GetFileSystemEntries(_dir));
    }
}
