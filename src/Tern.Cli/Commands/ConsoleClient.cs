// `tern vm console NAME`: the VM's console on this terminal, over the node's WebSocket
// (/api/vms/NAME/console/ws). Keys go to the guest raw (no echo or line editing here: the
// guest echoes); Ctrl-A X detaches, Ctrl-A Ctrl-A sends a Ctrl-A. From a pipe, bytes go as
// they come and the end of the input detaches after a short wait for the guest's answer.
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;

namespace Tern.Cli.Commands;

/// <summary>The interactive console client.</summary>
internal static class ConsoleClient
{
    private const char CtrlA = '\u0001';

    // After piped input ends, how long the guest may still answer before tern detaches.
    private static readonly TimeSpan AfterInput = TimeSpan.FromSeconds(2);

    public static async Task<int> RunAsync(string api, string? token, string vm, TextWriter output, TextWriter err, CancellationToken ct)
    {
        // Ask first, so an unknown or stopped VM gets the API's own one-line reason.
        using (var http = new HttpClient { BaseAddress = new Uri(api), Timeout = TimeSpan.FromSeconds(60) })
        {
            try
            {
                using var response = await http.GetAsync($"/api/vms/{Uri.EscapeDataString(vm)}", ct);
                var body = await response.Content.ReadFromJsonAsync<JsonElement>(ct);
                if (!response.IsSuccessStatusCode)
                {
                    err.WriteLine($"tern: {(body.TryGetProperty("error", out var e) ? e.GetString() : response.ReasonPhrase)}");
                    return RunCommand.UsageError;
                }
                if (body.GetProperty("state").GetString() is { } state && state != "running")
                {
                    err.WriteLine($"tern: VM '{vm}' is {state}, not running");
                    return RunCommand.UsageError;
                }
            }
            catch (HttpRequestException e)
            {
                err.WriteLine($"tern: cannot reach the cluster at {api}: {e.Message}");
                return 1;
            }
        }

        var uri = new UriBuilder(new Uri(new Uri(api), $"/api/vms/{Uri.EscapeDataString(vm)}/console/ws"));
        uri.Scheme = uri.Scheme == "https" ? "wss" : "ws";
        using var socket = new ClientWebSocket();
        if (token is { Length: > 0 })
            socket.Options.SetRequestHeader("Authorization", $"Bearer {token}");
        try
        {
            await socket.ConnectAsync(uri.Uri, ct);
        }
        catch (WebSocketException e)
        {
            err.WriteLine($"tern: cannot open the console of '{vm}': {e.Message}");
            return 1;
        }
        bool terminal = !Console.IsInputRedirected;
        if (terminal)
            err.WriteLine($"tern: connected to the console of '{vm}' (Ctrl-A X detaches)");
        using var detach = CancellationTokenSource.CreateLinkedTokenSource(ct);
        // A key read blocks its thread and cannot be cancelled: it gets a background thread of its own.
        if (terminal)
            new Thread(() => TypeFromTerminal(socket, detach.Token)) { IsBackground = true, Name = "tern-console-keys" }.Start();
        else
            _ = TypeFromPipeAsync(socket, detach.Token);
        int code = await ReceiveAsync(socket, output, err, ct);
        await detach.CancelAsync();
        return code;
    }

    private static async Task<int> ReceiveAsync(ClientWebSocket socket, TextWriter output, TextWriter err, CancellationToken ct)
    {
        var decoder = Encoding.UTF8.GetDecoder();
        var buffer = new byte[16 * 1024];
        var chars = new char[Encoding.UTF8.GetMaxCharCount(buffer.Length)];
        try
        {
            while (true)
            {
                var received = await socket.ReceiveAsync(buffer, ct);
                if (received.MessageType == WebSocketMessageType.Close)
                {
                    if (socket.State == WebSocketState.CloseReceived)
                        await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "", CancellationToken.None);
                    output.Flush();
                    string reason = socket.CloseStatusDescription ?? "";
                    if (socket.CloseStatus == WebSocketCloseStatus.PolicyViolation)
                    {
                        err.WriteLine($"tern: {reason}");
                        return RunCommand.UsageError;
                    }
                    if (reason != "detached")
                        err.WriteLine($"tern: the guest ended: {reason}");
                    return 0;
                }
                int n = decoder.GetChars(buffer, 0, received.Count, chars, 0);
                output.Write(chars, 0, n);
                output.Flush();
            }
        }
        catch (OperationCanceledException)
        {
            return 0;
        }
        catch (WebSocketException e)
        {
            err.WriteLine($"tern: the console connection broke: {e.Message}");
            return 1;
        }
    }

    private static async Task TypeFromPipeAsync(ClientWebSocket socket, CancellationToken ct)
    {
        using var stdin = Console.OpenStandardInput();
        var buffer = new byte[4096];
        try
        {
            int n;
            while ((n = await stdin.ReadAsync(buffer, ct)) > 0)
                await socket.SendAsync(buffer.AsMemory(0, n), WebSocketMessageType.Binary, endOfMessage: true, ct);
            await Task.Delay(AfterInput, ct);
            await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "detached", ct);
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException or IOException)
        {
            // detached, or the guest ended
        }
    }

    private static void TypeFromTerminal(ClientWebSocket socket, CancellationToken ct)
    {
        bool treat = Console.TreatControlCAsInput;
        Console.TreatControlCAsInput = true;
        try
        {
            bool escape = false;
            while (!ct.IsCancellationRequested && socket.State == WebSocketState.Open)
            {
                var key = Console.ReadKey(intercept: true);
                if (escape)
                {
                    escape = false;
                    if (key.KeyChar is 'x' or 'X')
                    {
                        socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "detached", ct).GetAwaiter().GetResult();
                        return;
                    }
                    if (key.KeyChar != CtrlA)
                        continue;
                }
                else if (key.KeyChar == CtrlA)
                {
                    escape = true;
                    continue;
                }
                byte[] bytes = TerminalInput.KeyBytes(key);
                if (bytes.Length > 0)
                    socket.SendAsync(bytes, WebSocketMessageType.Binary, endOfMessage: true, ct).GetAwaiter().GetResult();
            }
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException or InvalidOperationException or IOException)
        {
            // detached, the guest ended, or there is no terminal after all
        }
        finally
        {
            Console.TreatControlCAsInput = treat;
        }
    }
}
