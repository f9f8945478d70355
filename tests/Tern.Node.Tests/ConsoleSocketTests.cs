// The interactive console: a WebSocket on a node's API that carries the guest's output and the
// user's keystrokes (token-checked), and `tern vm console` on top of it. The guest is the
// heartbeat guest, which echoes each line it is sent as "you typed: LINE".
using System.Net;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;
using Tern.Cluster;

namespace Tern.Node.Tests;

[Collection("nodes")]
public sealed class ConsoleSocketTests : IAsyncLifetime, IDisposable
{
    private const string Token = "typist";
    private readonly string _dir = Directory.CreateTempSubdirectory("tern-ws-").FullName;
    private WebApplication _app = null!;
    private HttpClient _http = null!;
    private string _api = "";

    public async Task InitializeAsync()
    {
        _app = NodeHost.Build(new NodeSettings
        {
            Cluster = new TernNodeOptions { NodeName = "solo", Port = 0, DataDir = _dir, MemoryBudgetBytes = 512UL << 20, Harts = 2, FastTimings = true },
            HttpPort = 0,
            ApiToken = Token,
        }, logging => logging.ClearProviders());
        await _app.StartAsync();
        _api = NodeHost.HttpAddress(_app);
        _http = new HttpClient { BaseAddress = new Uri(_api), Timeout = TimeSpan.FromSeconds(60) };
        _http.DefaultRequestHeaders.Authorization = new("Bearer", Token);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while ((await _http.GetFromJsonAsync<JsonElement[]>("/api/hosts"))!.Length != 1)
        {
            Assert.True(DateTime.UtcNow < deadline, "the node never reported its host");
            await Task.Delay(100);
        }
    }

    private static string HeartbeatGuest
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Cluster.sln")))
                dir = dir.Parent;
            return Path.Combine(dir!.FullName, "src", "guests", "bin", "heartbeat", "heartbeat.elf");
        }
    }

    private async Task CreateAsync(string name) =>
        Assert.Equal(HttpStatusCode.Created, (await _http.PostAsJsonAsync("/api/vms", new { name, kernel = HeartbeatGuest, memoryBytes = 32UL << 20 })).StatusCode);

    private Uri Socket(string vm) => new($"{_api.Replace("http://", "ws://", StringComparison.Ordinal)}/api/vms/{vm}/console/ws");

    // Receives until the text so far contains `expected`; returns everything received.
    private static async Task<string> ReceiveUntil(ClientWebSocket socket, StringBuilder text, string expected)
    {
        var buffer = new byte[4096];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (!text.ToString().Contains(expected, StringComparison.Ordinal))
        {
            var r = await socket.ReceiveAsync(buffer, timeout.Token);
            Assert.NotEqual(WebSocketMessageType.Close, r.MessageType);
            text.Append(Encoding.UTF8.GetString(buffer, 0, r.Count));
        }
        return text.ToString();
    }

    [Fact]
    public async Task A_websocket_carries_output_and_typed_lines_to_the_guest_and_closes_when_it_stops()
    {
        await CreateAsync("echo");
        using var socket = new ClientWebSocket();
        socket.Options.SetRequestHeader("Authorization", $"Bearer {Token}");
        await socket.ConnectAsync(Socket("echo"), CancellationToken.None);
        var text = new StringBuilder();
        await ReceiveUntil(socket, text, "tern-heartbeat 1\n");

        await socket.SendAsync("hello tern\r"u8.ToArray(), WebSocketMessageType.Binary, true, CancellationToken.None);
        await ReceiveUntil(socket, text, "you typed: hello tern\n");

        Assert.Equal(HttpStatusCode.OK, (await _http.PostAsync("/api/vms/echo/stop", null)).StatusCode);
        var buffer = new byte[4096];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        WebSocketReceiveResult last;
        do
            last = await socket.ReceiveAsync(buffer, timeout.Token);
        while (last.MessageType != WebSocketMessageType.Close);
        Assert.Equal((WebSocketCloseStatus.NormalClosure, "stopped by the host"), (socket.CloseStatus, socket.CloseStatusDescription));
    }

    [Fact]
    public async Task Without_the_token_the_console_can_be_watched_but_not_typed_on()
    {
        await CreateAsync("watch");
        using var socket = new ClientWebSocket();
        await socket.ConnectAsync(Socket("watch"), CancellationToken.None);
        var text = new StringBuilder();
        await ReceiveUntil(socket, text, "tern-heartbeat 1\n");
        await socket.SendAsync("intruder\r"u8.ToArray(), WebSocketMessageType.Binary, true, CancellationToken.None);
        var buffer = new byte[4096];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while ((await socket.ReceiveAsync(buffer, timeout.Token)).MessageType != WebSocketMessageType.Close)
        {
        }
        Assert.Equal((WebSocketCloseStatus.PolicyViolation, "a valid API token is required to type on the console"), (socket.CloseStatus, socket.CloseStatusDescription));

        // The guest never saw the line: two heartbeats later its console has no echo of it.
        using var sse = await _http.GetAsync("/api/vms/watch/console", HttpCompletionOption.ResponseHeadersRead);
        using var reader = new StreamReader(await sse.Content.ReadAsStreamAsync());
        var seen = new StringBuilder();
        int beats = 0;
        while (beats < 2)
        {
            string line = (await reader.ReadLineAsync(timeout.Token))!;
            if (!line.StartsWith("data: ", StringComparison.Ordinal))
                continue;
            string chunk = JsonSerializer.Deserialize<string>(line["data: ".Length..])!;
            seen.Append(chunk);
            beats += chunk.Split("tern-heartbeat").Length - 1;
        }
        Assert.DoesNotContain("intruder", seen.ToString());
    }

    [Fact]
    public async Task An_unknown_vm_or_a_plain_request_is_refused_with_a_status()
    {
        using var socket = new ClientWebSocket();
        socket.Options.CollectHttpResponseDetails = true;
        await Assert.ThrowsAsync<WebSocketException>(() => socket.ConnectAsync(Socket("ghost"), CancellationToken.None));
        Assert.Equal(HttpStatusCode.NotFound, socket.HttpStatusCode);
        var plain = await _http.GetAsync("/api/vms/ghost/console/ws");
        Assert.Equal(HttpStatusCode.BadRequest, plain.StatusCode);
    }

    [Fact]
    public async Task Tern_vm_console_types_piped_input_and_prints_the_answer()
    {
        await CreateAsync("cli");
        var result = await TernCli.RunWithInputAsync(_dir, TimeSpan.FromSeconds(120), "hi from a pipe\r", "vm", "console", "cli", "--api", _api, "--token", Token);
        Assert.True(result.Code == 0, result.Output + result.Error);
        Assert.Contains("you typed: hi from a pipe\n", result.Output);

        var missing = await TernCli.RunWithInputAsync(_dir, TimeSpan.FromSeconds(120), "", "vm", "console", "nope", "--api", _api, "--token", Token);
        Assert.Equal((2, "tern: no VM named 'nope'"), (missing.Code, missing.Error.Trim()));
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
