// An OTLP/HTTP receiver inside the test: POST /v1/traces, /v1/metrics and /v1/logs in protobuf
// (the .NET exporter with OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf), decoded and kept in memory.
// It listens on 127.0.0.1 and answers every export with 200 and an empty response message.
using System.IO.Compression;
using System.Net;

namespace Tern.Node.Tests.Otlp;

internal sealed class OtlpReceiver : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly List<OtlpSpan> _spans = [];
    private readonly List<OtlpPoint> _points = [];
    private readonly List<OtlpLog> _logs = [];
    private readonly List<string> _errors = [];
    private readonly Task _loop;

    public OtlpReceiver()
    {
        Port = NodeProcess.FreePort();
        _listener.Prefixes.Add($"http://127.0.0.1:{Port}/");
        _listener.Start();
        _loop = Task.Run(LoopAsync);
    }

    public int Port { get; }

    public string Endpoint => $"http://127.0.0.1:{Port}";

    public IReadOnlyList<OtlpSpan> Spans
    {
        get
        {
            lock (_spans)
                return [.. _spans];
        }
    }

    public IReadOnlyList<OtlpPoint> Points
    {
        get
        {
            lock (_points)
                return [.. _points];
        }
    }

    public IReadOnlyList<OtlpLog> Logs
    {
        get
        {
            lock (_logs)
                return [.. _logs];
        }
    }

    /// <summary>Requests the receiver could not decode (a test asserts there are none).</summary>
    public IReadOnlyList<string> Errors
    {
        get
        {
            lock (_errors)
                return [.. _errors];
        }
    }

    private async Task LoopAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }
            try
            {
                Handle(context);
            }
            catch (Exception e) when (e is FormatException or IOException or InvalidDataException)
            {
                lock (_errors)
                    _errors.Add($"{context.Request.Url?.AbsolutePath}: {e.Message}");
                context.Response.StatusCode = 400;
            }
            context.Response.Close();
        }
    }

    private void Handle(HttpListenerContext context)
    {
        var request = context.Request;
        using var body = new MemoryStream();
        if (string.Equals(request.Headers["Content-Encoding"], "gzip", StringComparison.OrdinalIgnoreCase))
        {
            using var gzip = new GZipStream(request.InputStream, CompressionMode.Decompress);
            gzip.CopyTo(body);
        }
        else
        {
            request.InputStream.CopyTo(body);
        }
        if (request.HttpMethod != "POST" || request.ContentType?.StartsWith("application/x-protobuf", StringComparison.Ordinal) != true)
        {
            context.Response.StatusCode = 415;
            return;
        }
        var data = body.ToArray();
        switch (request.Url?.AbsolutePath)
        {
            case "/v1/traces":
                var spans = OtlpDecoder.Traces(data);
                lock (_spans)
                    _spans.AddRange(spans);
                break;
            case "/v1/metrics":
                var points = OtlpDecoder.Metrics(data);
                lock (_points)
                    _points.AddRange(points);
                break;
            case "/v1/logs":
                var logs = OtlpDecoder.Logs(data);
                lock (_logs)
                    _logs.AddRange(logs);
                break;
            default:
                context.Response.StatusCode = 404;
                return;
        }
        context.Response.StatusCode = 200;
        context.Response.ContentType = "application/x-protobuf";
    }

    public void Dispose()
    {
        _listener.Close();
        try
        {
            _loop.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
            // the loop ends with the listener
        }
    }
}
