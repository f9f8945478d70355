// The HTTP API of one in-process node: shapes, status codes for user errors, the token.
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;
using Tern.Cluster;

namespace Tern.Node.Tests;

[Collection("nodes")]
public sealed class NodeApiTests : IAsyncLifetime, IDisposable
{
    private const string Token = "s3cret";
    private readonly string _dir = Directory.CreateTempSubdirectory("tern-node-").FullName;
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
        _http = new HttpClient { BaseAddress = new Uri(NodeHost.HttpAddress(_app)) };
        _http.DefaultRequestHeaders.Authorization = new("Bearer", Token);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var hosts = await _http.GetFromJsonAsync<JsonElement[]>("/api/hosts");
            if (hosts is { Length: 1 })
                break;
            Assert.True(DateTime.UtcNow < deadline, "the node never reported its host");
            await Task.Delay(100);
        }
    }

    private static object Hello(string name, ulong memory = 32UL << 20) => new { name, kernel = HelloPath, memoryBytes = memory };

    private static string HelloPath
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Cluster.sln")))
                dir = dir.Parent;
            return Path.Combine(dir!.FullName, "src", "guests", "bin", "hello", "hello.elf");
        }
    }

    [Fact]
    public async Task Health_endpoints_answer()
    {
        Assert.Equal(HttpStatusCode.OK, (await _http.GetAsync("/health/live")).StatusCode);
        // Ready once the node is Up and its shard region registered, which may follow the host
        // report the fixture waits for: until then 503 with the reason.
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            using var ready = await _http.GetAsync("/health/ready");
            if (ready.StatusCode == HttpStatusCode.OK)
                break;
            Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
            Assert.False(string.IsNullOrWhiteSpace(await ready.Content.ReadAsStringAsync()), "a 503 without a reason");
            Assert.True(DateTime.UtcNow < deadline, "the node never became ready");
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task Hosts_list_gives_name_address_pid_and_capacity()
    {
        var host = (await _http.GetFromJsonAsync<JsonElement[]>("/api/hosts"))!.Single();
        Assert.Equal("solo", host.GetProperty("name").GetString());
        Assert.StartsWith("akka.tcp://tern@127.0.0.1:", host.GetProperty("address").GetString());
        Assert.Equal(Environment.ProcessId, host.GetProperty("processId").GetInt32());
        Assert.Equal(512L << 20, host.GetProperty("memoryBytes").GetInt64());
        Assert.Equal(2, host.GetProperty("harts").GetInt32());
    }

    [Fact]
    public async Task A_vm_is_created_runs_and_is_recorded_as_stopped_after_power_off()
    {
        var created = await _http.PostAsJsonAsync("/api/vms", Hello("h1"));
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var vm = await created.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("solo", vm.GetProperty("host").GetString());
        Assert.Equal(1, vm.GetProperty("generation").GetInt64());

        var deadline = DateTime.UtcNow.AddSeconds(20);
        JsonElement shown;
        do
        {
            shown = await _http.GetFromJsonAsync<JsonElement>("/api/vms/h1");
            Assert.True(DateTime.UtcNow < deadline, "the guest never stopped");
        }
        while (shown.GetProperty("state").GetString() != "stopped");
        Assert.Equal("powered off with code 0", shown.GetProperty("lastError").GetString());

        Assert.Equal(HttpStatusCode.OK, (await _http.PostAsync("/api/vms/h1/start", null)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await _http.DeleteAsync("/api/vms/h1")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _http.GetAsync("/api/vms/h1")).StatusCode);
    }

    [Theory]
    [InlineData("GET", "/api/vms/ghost", null, HttpStatusCode.NotFound, "no VM named 'ghost'")]
    [InlineData("POST", "/api/vms/ghost/stop", null, HttpStatusCode.NotFound, "no VM named 'ghost'")]
    [InlineData("POST", "/api/vms", "{\"name\":\"huge\",\"kernel\":\"/k\",\"memoryBytes\":4294967296}", (HttpStatusCode)422, "needs 4096 MiB but the most free memory on any host is 512 MiB")]
    [InlineData("POST", "/api/vms", "{\"name\":\"Bad Name\",\"kernel\":\"/k\"}", HttpStatusCode.BadRequest, "'Bad Name' is not a valid VM name: use 1-63 lower-case letters, digits and '-'")]
    [InlineData("POST", "/api/vms", "{\"name\":\"x\"}", HttpStatusCode.BadRequest, "a JSON body with at least 'name' and 'kernel' is required")]
    [InlineData("POST", "/api/vms", "garbage", HttpStatusCode.BadRequest, null)]
    public async Task User_errors_are_4xx_with_a_reason(string method, string path, string? body, HttpStatusCode status, string? reason)
    {
        using var request = new HttpRequestMessage(new HttpMethod(method), path);
        if (body is not null)
            request.Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json");
        var response = await _http.SendAsync(request);
        Assert.Equal(status, response.StatusCode);
        string error = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error").GetString()!;
        if (reason is null)
            Assert.StartsWith("the body is not a VM request:", error);
        else
            Assert.Equal(reason, error);
    }

    [Fact]
    public async Task A_duplicate_name_is_a_conflict_and_changes_nothing()
    {
        Assert.Equal(HttpStatusCode.Created, (await _http.PostAsJsonAsync("/api/vms", Hello("dup"))).StatusCode);
        var before = await _http.GetFromJsonAsync<JsonElement>("/api/vms/dup");
        var again = await _http.PostAsJsonAsync("/api/vms", Hello("dup", 64UL << 20));
        Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
        var after = await _http.GetFromJsonAsync<JsonElement>("/api/vms/dup");
        Assert.Equal(before.GetProperty("memoryBytes").GetInt64(), after.GetProperty("memoryBytes").GetInt64());
        Assert.Equal(before.GetProperty("generation").GetInt64(), after.GetProperty("generation").GetInt64());
    }

    [Fact]
    public async Task Vm_list_shows_existing_vms_only()
    {
        await _http.PostAsJsonAsync("/api/vms", Hello("l1"));
        await _http.PostAsJsonAsync("/api/vms", Hello("l2"));
        await _http.DeleteAsync("/api/vms/l2");
        var names = (await _http.GetFromJsonAsync<JsonElement[]>("/api/vms"))!.Select(v => v.GetProperty("name").GetString()).ToList();
        Assert.Contains("l1", names);
        Assert.DoesNotContain("l2", names);
    }

    [Fact]
    public async Task Console_streams_as_server_sent_events()
    {
        string kernel = Path.Combine(_dir, "ticker.elf");
        await File.WriteAllBytesAsync(kernel, Tern.Tests.Shared.TickerGuest.Elf());
        Assert.Equal(HttpStatusCode.Created, (await _http.PostAsJsonAsync("/api/vms", new { name = "tick", kernel, memoryBytes = 32UL << 20 })).StatusCode);
        using var response = await _http.GetAsync("/api/vms/tick/console", HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var text = new System.Text.StringBuilder();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (!text.ToString().Contains("T\nT\n", StringComparison.Ordinal))
        {
            var line = await reader.ReadLineAsync(timeout.Token);
            if (line is not null && line.StartsWith("data: ", StringComparison.Ordinal))
                text.Append(JsonSerializer.Deserialize<string>(line["data: ".Length..]));
        }
        Assert.Equal(HttpStatusCode.NotFound, (await _http.GetAsync("/api/vms/ghost/console")).StatusCode);

        Assert.Equal(HttpStatusCode.OK, (await _http.PostAsync("/api/vms/tick/stop", null)).StatusCode);
        var rest = await reader.ReadToEndAsync(timeout.Token);
        Assert.Contains("event: end\ndata: \"stopped by the host\"", rest);
    }

    [Fact]
    public async Task Mutating_calls_need_the_token()
    {
        using var anonymous = new HttpClient { BaseAddress = _http.BaseAddress };
        var refused = await anonymous.PostAsJsonAsync("/api/vms", Hello("anon"));
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await anonymous.GetAsync("/api/vms/anon")).StatusCode);
    }

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
