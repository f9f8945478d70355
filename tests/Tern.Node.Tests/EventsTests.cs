// GET /api/events and `tern events` against an in-process node: the VM lifecycle in order,
// with time, VM, host and generation; a guest's reset; the host joining.
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;
using Tern.Cli;
using Tern.Cluster;
using Tern.Tests.Shared;

namespace Tern.Node.Tests;

[Collection("nodes")]
public sealed class EventsTests : IAsyncLifetime, IDisposable
{
    private const string Token = "ev";
    private readonly string _dir = Directory.CreateTempSubdirectory("tern-events-").FullName;
    private WebApplication _app = null!;
    private HttpClient _http = null!;

    public async Task InitializeAsync()
    {
        _app = NodeHost.Build(new NodeSettings
        {
            Cluster = new TernNodeOptions { NodeName = "solo", Port = 0, DataDir = _dir, MemoryBudgetBytes = 512UL << 20, Harts = 2, FastTimings = true },
            HttpPort = 0,
            ApiToken = Token,
        }, logging => logging.ClearProviders());
        await _app.StartAsync();
        _http = new HttpClient { BaseAddress = new Uri(NodeHost.HttpAddress(_app)), Timeout = TimeSpan.FromSeconds(60) };
        _http.DefaultRequestHeaders.Authorization = new("Bearer", Token);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while ((await _http.GetFromJsonAsync<JsonElement[]>("/api/hosts"))!.Length != 1)
        {
            Assert.True(DateTime.UtcNow < deadline, "the node never reported its host");
            await Task.Delay(100);
        }
    }

    private sealed record Seen(string Time, string Kind, string? Vm, string? Host, long Generation, string? Detail);

    private static Seen Parse(string data)
    {
        var e = JsonDocument.Parse(data).RootElement;
        return new(e.GetProperty("time").GetString()!, e.GetProperty("kind").GetString()!, e.GetProperty("vm").GetString(),
            e.GetProperty("host").GetString(), e.GetProperty("generation").GetInt64(), e.GetProperty("detail").GetString());
    }

    // Reads the event stream until an event matches (or 30 s pass).
    private static async Task<List<Seen>> ReadUntil(StreamReader reader, Func<Seen, bool> last)
    {
        var seen = new List<Seen>();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (true)
        {
            string? line = await reader.ReadLineAsync(timeout.Token);
            Assert.NotNull(line);
            if (!line.StartsWith("data: ", StringComparison.Ordinal))
                continue;
            seen.Add(Parse(line["data: ".Length..]));
            if (last(seen[^1]))
                return seen;
        }
    }

    [Fact]
    public async Task The_event_stream_tells_a_vms_life_in_order_with_host_and_generation()
    {
        string kernel = Path.Combine(_dir, "ticker.elf");
        await File.WriteAllBytesAsync(kernel, TickerGuest.Elf());
        using var response = await _http.GetAsync("/api/events", HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());

        Assert.Equal(System.Net.HttpStatusCode.Created, (await _http.PostAsJsonAsync("/api/vms", new { name = "ev1", kernel, memoryBytes = 32UL << 20 })).StatusCode);
        await _http.PostAsync("/api/vms/ev1/stop", null);
        await _http.PostAsync("/api/vms/ev1/start", null);
        await _http.DeleteAsync("/api/vms/ev1");
        var seen = await ReadUntil(reader, e => e.Kind == "vm.deleted" && e.Vm == "ev1");

        Assert.Contains(seen, e => e is { Kind: "host.joined", Host: "solo" });
        var life = seen.Where(e => e.Vm == "ev1").Select(e => (e.Kind, e.Host, e.Generation)).ToList();
        Assert.Equal(
        [
            ("vm.created", null, 0), ("vm.placed", "solo", 1), ("vm.started", "solo", 1), ("vm.stopped", "solo", 1),
            ("vm.placed", "solo", 2), ("vm.started", "solo", 2), ("vm.stopped", "solo", 2), ("vm.deleted", null, 2),
        ], life);
        Assert.Equal("stopped by the host", seen.First(e => e.Kind == "vm.stopped").Detail);
        var times = seen.Where(e => e.Vm == "ev1").Select(e => DateTimeOffset.Parse(e.Time, System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.All(seen, e => Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", e.Time));
        Assert.Equal(times.Order(), times);
        Assert.True(DateTimeOffset.UtcNow - times[0] < TimeSpan.FromMinutes(1), $"event time {times[0]} is not now");
    }

    [Fact]
    public async Task A_guest_reset_is_a_restarted_event_and_the_cli_prints_the_history()
    {
        string kernel = Path.Combine(_dir, "resetter.elf");
        await File.WriteAllBytesAsync(kernel, TickerGuest.Resetter());
        Assert.Equal(System.Net.HttpStatusCode.Created, (await _http.PostAsJsonAsync("/api/vms", new { name = "rs", kernel, memoryBytes = 32UL << 20 })).StatusCode);
        using (var response = await _http.GetAsync("/api/events", HttpCompletionOption.ResponseHeadersRead))
        using (var reader = new StreamReader(await response.Content.ReadAsStreamAsync()))
        {
            var restarted = (await ReadUntil(reader, e => e.Kind == "vm.restarted" && e.Vm == "rs"))[^1];
            Assert.Equal(("solo", 1L, "the guest reset"), (restarted.Host, restarted.Generation, restarted.Detail));
        }
        await _http.DeleteAsync("/api/vms/rs");

        var json = await Cli("events", "--json");
        Assert.Equal(0, json.Code);
        var events = json.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(Parse).ToList();
        Assert.Contains(events, e => e is { Kind: "vm.started", Vm: "rs", Host: "solo", Generation: 1 });
        Assert.Equal("vm.deleted", events.Last(e => e.Vm == "rs").Kind);

        var table = await Cli("events");
        Assert.Equal(0, table.Code);
        Assert.Matches(@"^TIME\s+KIND\s+VM\s+HOST\s+GENERATION\s+DETAIL\n", table.Output);
        Assert.True(System.Text.RegularExpressions.Regex.IsMatch(table.Output, @"\n\S+Z\s+vm\.placed\s+rs\s+solo\s+1\s+-\n"), table.Output);
        // A reset loop is reported at most once a second.
        Assert.InRange(events.Count(e => e.Kind == "vm.restarted"), 1, 30);
    }

    private Task<(int Code, string Output, string Error)> Cli(params string[] args) => Task.Run(() =>
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = TernApp.Invoke([.. args, "--api", _http.BaseAddress!.ToString(), "--token", Token], output, error);
        return (code, output.ToString(), error.ToString());
    });

    public void Dispose() => _http.Dispose();

    public async Task DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
            // SQLite may hold the file a moment longer; it is a temp dir.
        }
    }
}
