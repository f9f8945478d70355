// A small client for QEMU's machine protocol (QMP): JSON objects, one per line, over a unix
// socket. The server greets first; `qmp_capabilities` leaves negotiation mode; then each
// command gets one answer ({"return": ...} or {"error": ...}), with asynchronous events
// ({"event": ...}) interleaved, which this client skips.
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace Tern.Cli.Commands;

/// <summary>A QMP error answer or a broken QMP connection.</summary>
public sealed class QmpException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>A connection to one QEMU process's QMP socket.</summary>
public sealed class QmpClient : IDisposable
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly StreamReader _reader;

    private QmpClient(Socket socket)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: true);
        _reader = new StreamReader(_stream, Encoding.UTF8);
    }

    /// <summary>
    /// Connects to the unix socket at <paramref name="path"/>, retrying until QEMU has created it
    /// or <paramref name="timeout"/> passes, reads the greeting and negotiates capabilities.
    /// </summary>
    public static async Task<QmpClient> ConnectAsync(string path, TimeSpan timeout, CancellationToken ct)
    {
        var until = DateTime.UtcNow + timeout;
        while (true)
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), ct).ConfigureAwait(false);
                var client = new QmpClient(socket);
                try
                {
                    using var greeting = await client.ReadMessageAsync(ct).WaitAsync(timeout, ct).ConfigureAwait(false);
                    if (!greeting.RootElement.TryGetProperty("QMP", out _))
                        throw new QmpException($"'{path}' did not greet with QMP");
                    await client.ExecuteAsync("qmp_capabilities", null, ct).ConfigureAwait(false);
                    return client;
                }
                catch
                {
                    client.Dispose();
                    throw;
                }
            }
            catch (SocketException) when (DateTime.UtcNow < until)
            {
                socket.Dispose();
                await Task.Delay(20, ct).ConfigureAwait(false);
            }
            catch (SocketException e)
            {
                socket.Dispose();
                throw new QmpException($"cannot connect to QMP at '{path}': {e.Message}", e);
            }
        }
    }

    /// <summary>Runs <paramref name="command"/> and returns a copy of its "return" value.</summary>
    public async Task<JsonElement> ExecuteAsync(string command, object? arguments, CancellationToken ct)
    {
        var request = arguments is null
            ? JsonSerializer.Serialize(new Dictionary<string, object> { ["execute"] = command })
            : JsonSerializer.Serialize(new Dictionary<string, object> { ["execute"] = command, ["arguments"] = arguments });
        byte[] line = Encoding.UTF8.GetBytes(request + "\n");
        // QEMU answers within milliseconds; a monitor that does not is stuck, not slow.
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct);
        limit.CancelAfter(AnswerTimeout);
        try
        {
            await _stream.WriteAsync(line, limit.Token).ConfigureAwait(false);
            while (true)
            {
                using var answer = await ReadMessageAsync(limit.Token).ConfigureAwait(false);
                var root = answer.RootElement;
                if (root.TryGetProperty("return", out var ret))
                    return ret.Clone();
                if (root.TryGetProperty("error", out var error))
                {
                    string desc = error.TryGetProperty("desc", out var d) ? d.GetString() ?? "" : error.ToString();
                    throw new QmpException($"QMP {command}: {desc}");
                }
                // an event: not the answer
            }
        }
        catch (OperationCanceledException e) when (!ct.IsCancellationRequested)
        {
            throw new QmpException($"QMP {command}: no answer within {AnswerTimeout.TotalSeconds:F0} s", e);
        }
    }

    private static readonly TimeSpan AnswerTimeout = TimeSpan.FromSeconds(10);

    private async Task<JsonDocument> ReadMessageAsync(CancellationToken ct)
    {
        string? line;
        try
        {
            line = await _reader.ReadLineAsync(ct).ConfigureAwait(false);
        }
        catch (IOException e)
        {
            throw new QmpException($"QMP connection lost: {e.Message}", e);
        }
        if (line is null)
            throw new QmpException("QMP connection closed by QEMU");
        try
        {
            return JsonDocument.Parse(line);
        }
        catch (JsonException e)
        {
            throw new QmpException($"QEMU sent malformed QMP: {e.Message}", e);
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _reader.Dispose();
        _stream.Dispose();
        _socket.Dispose();
    }
}
