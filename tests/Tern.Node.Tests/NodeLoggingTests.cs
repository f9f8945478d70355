// A node's log lines carry the trace of the operation they belong to, even with no exporter
// configured: the hypervisor's line for a VM's boot names the trace the API call started (or
// continued, from the caller's traceparent), and the API answers with that trace in traceresponse.
using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;
using Tern.Cluster;

namespace Tern.Node.Tests;

[Collection("nodes")]
public sealed class NodeLoggingTests : IAsyncLifetime, IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("tern-log-").FullName;
    private readonly CapturingProvider _logs = new();
    private WebApplication _app = null!;
    private HttpClient _http = null!;

    public async Task InitializeAsync()
    {
        Assert.True(string.IsNullOrEmpty(Environment.GetEnvironmentVariable("OTEL_EXPORTER_OTLP_ENDPOINT")), "this test is about a node that exports nothing");
        _app = NodeHost.Build(new NodeSettings
        {
            Cluster = new TernNodeOptions { NodeName = "logged", Port = 0, DataDir = _dir, MemoryBudgetBytes = 512UL << 20, Harts = 2, FastTimings = true },
            HttpPort = 0,
        }, logging => logging.AddProvider(_logs));
        await _app.StartAsync();
        _http = new HttpClient { BaseAddress = new Uri(NodeHost.HttpAddress(_app)) };
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while ((await _http.GetFromJsonAsync<JsonElement[]>("/api/hosts"))!.Length != 1)
        {
            Assert.True(DateTime.UtcNow < deadline, "the node never reported its host");
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task The_boot_log_line_of_a_vm_creation_carries_the_creations_trace_id()
    {
        string kernel = Path.Combine(_dir, "ticker.elf");
        await File.WriteAllBytesAsync(kernel, Tern.Tests.Shared.TickerGuest.Elf());
        const string traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/vms") { Content = JsonContent.Create(new { name = "logged-vm", kernel, memoryBytes = 32UL << 20 }) };
        request.Headers.Add("traceparent", $"00-{traceId}-00f067aa0ba902b7-01");
        using var created = await _http.SendAsync(request);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.StartsWith($"00-{traceId}-", created.Headers.GetValues("traceresponse").Single(), StringComparison.Ordinal);

        var line = Assert.Single(_logs.Entries, e => e.Message.StartsWith("started VM logged-vm generation 1", StringComparison.Ordinal));
        Assert.Equal("Tern.Cluster.Actors.Hypervisor", line.Category);
        Assert.Equal(traceId, line.Scope.GetValueOrDefault("TraceId"));
        Assert.Matches("^[0-9a-f]{16}$", line.Scope.GetValueOrDefault("SpanId") ?? "");

        // A call without a traceparent starts a trace of its own, and its lines name it.
        using var second = await _http.PostAsJsonAsync("/api/vms", new { name = "logged-too", kernel, memoryBytes = 32UL << 20 });
        Assert.Equal(HttpStatusCode.Created, second.StatusCode);
        string secondTrace = second.Headers.GetValues("traceresponse").Single().Split('-')[1];
        Assert.NotEqual(traceId, secondTrace);
        var started = Assert.Single(_logs.Entries, e => e.Message.StartsWith("started VM logged-too generation 1", StringComparison.Ordinal));
        Assert.Equal(secondTrace, started.Scope.GetValueOrDefault("TraceId"));
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _app.DisposeAsync();
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
            // SQLite may hold the file a moment longer; it is a temp dir
        }
    }

    private sealed record Entry(string Category, string Message, Dictionary<string, string> Scope);

    // Records every line with the key/value pairs of its scopes, as a console formatter would see them.
    private sealed class CapturingProvider : ILoggerProvider, ISupportExternalScope
    {
        private readonly ConcurrentQueue<Entry> _entries = new();
        private IExternalScopeProvider _scopes = new LoggerExternalScopeProvider();

        public IEnumerable<Entry> Entries => _entries;

        public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

        public void SetScopeProvider(IExternalScopeProvider scopeProvider) => _scopes = scopeProvider;

        public void Dispose()
        {
        }

        private sealed class Logger(CapturingProvider owner, string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => owner._scopes.Push(state);

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                var scope = new Dictionary<string, string>();
                owner._scopes.ForEachScope((s, into) =>
                {
                    if (s is IEnumerable<KeyValuePair<string, object?>> pairs)
                    {
                        foreach (var (k, v) in pairs)
                            into[k] = v?.ToString() ?? "";
                    }
                }, scope);
                owner._entries.Enqueue(new Entry(category, formatter(state, exception), scope));
            }
        }
    }
}
