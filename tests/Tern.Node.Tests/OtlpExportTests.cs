// The OTLP export of real `tern node` processes, received by an OTLP/HTTP receiver inside the
// test: a VM created through one node and placed on another is ONE trace, with spans from both
// nodes linked parent to child; the hypervisor's log line for it carries that trace's id (in the
// node's JSON console log and in the OTLP logs); the guest's metrics arrive from its host.
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Tern.Node.Tests.Otlp;
using Tern.Tests.Shared;

namespace Tern.Node.Tests;

[Collection("nodes")]
public sealed class OtlpExportTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("tern-otlp-").FullName;
    private readonly OtlpReceiver _receiver = new();
    private readonly List<NodeProcess> _nodes = [];
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(60) };

    private async Task<List<string>> StartNodesAsync(int count)
    {
        var environment = new Dictionary<string, string>
        {
            ["OTEL_EXPORTER_OTLP_ENDPOINT"] = _receiver.Endpoint,
            ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
            ["OTEL_SERVICE_NAME"] = "tern-test",
            ["OTEL_BSP_SCHEDULE_DELAY"] = "200",
            ["OTEL_BLRP_SCHEDULE_DELAY"] = "200",
            ["OTEL_METRIC_EXPORT_INTERVAL"] = "500",
            ["TERN_LOG_FORMAT"] = "json",
            ["Logging__LogLevel__Tern"] = "Information",
        };
        var ports = Enumerable.Range(0, count).Select(_ => NodeProcess.FreePort()).ToList();
        string journal = $"Data Source={Path.Combine(_dir, "cluster.db")}";
        for (int i = 0; i < count; i++)
        {
            _nodes.Add(NodeProcess.Start(environment, "--name", $"node-{i + 1}", "--data-dir", Path.Combine(_dir, $"node-{i + 1}"),
                "--port", ports[i].ToString(System.Globalization.CultureInfo.InvariantCulture), "--seed", $"127.0.0.1:{ports[0]}",
                "--http-port", "0", "--memory", "512M", "--journal", journal));
        }
        var apis = new List<string>();
        foreach (var n in _nodes)
            apis.Add(await n.WaitForApiAsync());
        var deadline = DateTime.UtcNow.AddSeconds(120);
        while (true)
        {
            try
            {
                if ((await _http.GetFromJsonAsync<JsonElement[]>(apis[0] + "/api/hosts"))!.Length == count)
                {
                    await NodeProcess.WaitForMembersUpAsync(_http, apis, count, () => string.Join("\n---\n", _nodes.Select(n => n.Log)));
                    return apis;
                }
            }
            catch (HttpRequestException)
            {
                // the scheduler singleton is still starting
            }
            Assert.True(DateTime.UtcNow < deadline, "the node processes did not form a cluster:\n" + string.Join("\n---\n", _nodes.Select(n => n.Log)));
            await Task.Delay(250);
        }
    }

    private static async Task<T> EventuallyAsync<T>(Func<T?> probe, string what) where T : class
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            if (probe() is { } found)
                return found;
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for {what}");
            await Task.Delay(200);
        }
    }

    [Fact]
    public async Task A_vm_created_on_one_node_and_placed_on_another_is_one_exported_trace_with_spans_from_both()
    {
        string kernel = Path.Combine(_dir, "ticker.elf");
        await File.WriteAllBytesAsync(kernel, TickerGuest.Elf());
        var apis = await StartNodesAsync(2);

        // The caller's own span: the API continues its trace (W3C traceparent).
        string traceId = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));
        string callerSpan = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(8));
        using var request = new HttpRequestMessage(HttpMethod.Post, apis[0] + "/api/vms")
        {
            Content = JsonContent.Create(new { name = "otel-web", kernel, memoryBytes = 64UL << 20, host = "node-2" }),
        };
        request.Headers.Add("traceparent", $"00-{traceId}-{callerSpan}-01");
        using var created = await _http.SendAsync(request);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal("node-2", (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("host").GetString());
        Assert.Contains(traceId, created.Headers.GetValues("traceresponse").Single(), StringComparison.Ordinal);

        string[] expected = ["api.vm.create", "vm.create", "scheduler.place", "hypervisor.start-guest"];
        var trace = await EventuallyAsync(() =>
        {
            var spans = _receiver.Spans.Where(s => s.TraceId == traceId).ToList();
            return expected.All(n => spans.Any(s => s.Name == n)) ? spans : null;
        }, "the creation's spans");
        OtlpSpan Named(string name) => Assert.Single(trace, s => s.Name == name);
        var api = Named("api.vm.create");
        var controller = Named("vm.create");
        var place = Named("scheduler.place");
        var hypervisor = Named("hypervisor.start-guest");

        Assert.Equal("node-1", api.Node);
        Assert.Equal("node-2", hypervisor.Node);
        Assert.True(trace.Select(s => s.Node).Distinct().Count() >= 2);
        Assert.All(trace, s => Assert.Equal("tern-test", s.Resource["service.name"]));
        Assert.Equal(callerSpan, api.ParentSpanId);
        Assert.Equal(api.SpanId, controller.ParentSpanId);
        Assert.Equal(controller.SpanId, place.ParentSpanId);
        Assert.Equal(controller.SpanId, hypervisor.ParentSpanId);
        Assert.Equal(("Tern.Node", "Tern.Cluster", "Tern.Cluster"), (api.Scope, controller.Scope, hypervisor.Scope));
        Assert.Equal("otel-web", hypervisor.Attributes["tern.vm"]);
        Assert.Equal("node-2", place.Attributes["tern.host"]);
        Assert.Equal(trace.Count, trace.Select(s => s.SpanId).Distinct().Count());

        // The hypervisor's log line for this boot carries the trace id: in its JSON console log...
        var line = await EventuallyAsync(() => JsonLines(_nodes[1].Log).FirstOrDefault(l =>
            l.GetProperty("Message").GetString()!.StartsWith("started VM otel-web", StringComparison.Ordinal)) is { ValueKind: JsonValueKind.Object } l ? (object)l : null,
            "node-2's log line for the boot");
        var scopes = ((JsonElement)line).GetProperty("Scopes").EnumerateArray().ToList();
        Assert.Contains(scopes, s => s.TryGetProperty("TraceId", out var t) && t.GetString() == traceId);
        Assert.Contains(scopes, s => s.TryGetProperty("SpanId", out var t) && t.GetString() == hypervisor.SpanId);
        // ...and in the logs exported over OTLP.
        var exported = await EventuallyAsync(() => _receiver.Logs.FirstOrDefault(l => l.Body.StartsWith("started VM otel-web", StringComparison.Ordinal)), "the exported log record");
        Assert.Equal(("node-2", traceId, hypervisor.SpanId, "otel-web"), (exported.Node, exported.TraceId, exported.SpanId, exported.Attributes["Vm"]));

        // The guest's metrics come from its host; its instruction counter moves.
        var first = await EventuallyAsync(() => _receiver.Points.LastOrDefault(p => p.Metric == "tern.guest.instructions" && p.Attributes.GetValueOrDefault("tern.vm") as string == "otel-web"), "the guest's instruction counter");
        Assert.Equal(("node-2", "{instruction}"), (first.Node, first.Unit));
        await EventuallyAsync(() => _receiver.Points.LastOrDefault(p => p.Metric == "tern.guest.instructions" && p.Attributes.GetValueOrDefault("tern.vm") as string == "otel-web" && p.Value > first.Value), "a later, larger instruction count");
        await EventuallyAsync(() => _receiver.Points.LastOrDefault(p => p.Metric == "tern.host.vms" && p.Node == "node-2" && p.Value == 1), "node-2's VM count of 1");
        Assert.Empty(_receiver.Errors);
    }

    [Fact]
    public async Task A_vm_created_with_the_cli_is_one_trace_from_the_cli_to_the_other_node()
    {
        string kernel = Path.Combine(_dir, "ticker.elf");
        await File.WriteAllBytesAsync(kernel, TickerGuest.Elf());
        var apis = await StartNodesAsync(2);

        var (status, output) = await TernAsync("vm", "create", "--api", apis[0], "--name", "otel-cli", "--mem", "64M", "--kernel", kernel, "--host", "node-2");
        Assert.True(status == 0, $"tern vm create exited with {status}:\n{output}");

        var cli = await EventuallyAsync(() => _receiver.Spans.FirstOrDefault(s => s.Name == "cli.vm.create"), "the CLI's span");
        Assert.Equal(("tern-cli", "Tern.Cli", ""), ((string)cli.Resource["service.name"], cli.Scope, cli.ParentSpanId));
        var trace = await EventuallyAsync(() =>
        {
            // Each process exports on its own schedule: wait for the spans of all three.
            var spans = _receiver.Spans.Where(s => s.TraceId == cli.TraceId).ToList();
            string[] expected = ["api.vm.create", "vm.create", "hypervisor.start-guest"];
            return expected.All(n => spans.Any(s => s.Name == n)) && spans.Any(s => s.Scope == "System.Net.Http") ? spans : null;
        }, "the API's, controller's and hypervisor's spans in the CLI's trace");
        var api = Assert.Single(trace, s => s.Name == "api.vm.create");
        var controller = Assert.Single(trace, s => s.Name == "vm.create");
        var boot = Assert.Single(trace, s => s.Name == "hypervisor.start-guest");
        var request = Assert.Single(trace, s => s.Scope == "System.Net.Http");
        Assert.Equal((cli.SpanId, "tern-cli"), (request.ParentSpanId, (string)request.Resource["service.name"]));
        Assert.Equal((request.SpanId, "node-1"), (api.ParentSpanId, api.Node));
        Assert.Equal((controller.SpanId, "node-2", "otel-cli"), (boot.ParentSpanId, boot.Node, boot.Attributes["tern.vm"]));
    }

    // The real `tern` in a process of its own, exporting to the receiver.
    private async Task<(int Status, string Output)> TernAsync(params string[] args)
    {
        var psi = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "tern.dll"));
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        psi.Environment["OTEL_EXPORTER_OTLP_ENDPOINT"] = _receiver.Endpoint;
        psi.Environment["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf";
        using var process = System.Diagnostics.Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout + await stderr);
    }

    private static IEnumerable<JsonElement> JsonLines(string log)
    {
        foreach (var text in log.Split('\n'))
        {
            if (!text.StartsWith('{'))
                continue;
            JsonElement element;
            try
            {
                element = JsonDocument.Parse(text).RootElement;
            }
            catch (JsonException)
            {
                continue;
            }
            if (element.TryGetProperty("Message", out _))
                yield return element;
        }
    }

    public void Dispose()
    {
        for (int i = _nodes.Count - 1; i >= 0; i--)
            _nodes[i].Dispose();
        _receiver.Dispose();
        _http.Dispose();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
            // a killed node may still hold its files for a moment; it is a temp dir
        }
    }
}
