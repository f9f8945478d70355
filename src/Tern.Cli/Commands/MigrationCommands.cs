// `tern vm migrate` (live migration with a progress bar, then the figures) and `tern host
// drain|undrain`: clients of the node API's migration calls (docs/migration.md).
using System.CommandLine;
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Tern.Cli.Commands;

/// <summary>The migration verbs.</summary>
public static class MigrationCommands
{
    // How often a running migration is polled for progress.
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(100);

    private static readonly string[] FigureKeys =
        ["total_time_ms", "setup_time_ms", "downtime_ms", "rounds", "bytes_sent", "pages_zero", "pages_compressed", "pages_raw", "pages_delta", "dirty_rate", "bandwidth_mibps", "prepare_time_ms", "pause_ms", "final_copy_ms", "ack_wait_ms", "throttle", "postcopy_pages"];

    /// <summary>`tern vm migrate NAME --to HOST ...` and `tern vm migrate --cancel NAME`.</summary>
    public static Command Migrate()
    {
        var name = new Argument<string>("name") { Description = "The VM." };
        var to = new Option<string?>("--to") { Description = "Target host (default: the scheduler picks one)." };
        var downtime = new Option<string>("--downtime-limit") { Description = "Switch over once the rest fits this pause, e.g. 10ms, 0.5s.", DefaultValueFactory = _ => "10ms" };
        var bandwidth = new Option<string?>("--max-bandwidth") { Description = "Cap on the migration stream, bytes per second with K/M/G (e.g. 100M); default unlimited." };
        var postcopy = new Option<bool>("--postcopy") { Description = "Post-copy: switch over after round 0 and fetch the rest on demand (bounded time; the guest needs both hosts until the end)." };
        var atOnce = new Option<bool>("--postcopy-at-once") { Description = "Post-copy without round 0: switch over at once; every page with data follows once, zero pages never (the guest needs both hosts until the last page)." };
        var autoConverge = new Option<string?>("--auto-converge") { Description = "Throttle a guest that dirties memory faster than the link drains: on (default) or off." };
        var cancel = new Option<bool>("--cancel") { Description = "Cancel the VM's migration in progress (the guest stays on its source)." };
        var command = new Command("migrate", "Move a running VM to another host by live migration.") { name, to, downtime, bandwidth, postcopy, atOnce, autoConverge, cancel };
        command.SetAction((parse, ct) =>
        {
            var err = parse.InvocationConfiguration.Error;
            string vm = parse.GetValue(name)!;
            if (parse.GetValue(cancel))
                return Cancel(parse, vm, ct);
            if (!TryParseDuration(parse.GetValue(downtime)!, out double downtimeMs))
            {
                err.WriteLine($"tern vm migrate: --downtime-limit '{parse.GetValue(downtime)}' is not a duration (e.g. 10ms, 0.5s).");
                return Task.FromResult(RunCommand.UsageError);
            }
            long? maxBandwidth = null;
            if (parse.GetValue(bandwidth) is { } bw)
            {
                if (!SizeParser.TryParse(bw.EndsWith("/s", StringComparison.Ordinal) ? bw[..^2] : bw, out ulong bytes) || bytes > long.MaxValue)
                {
                    err.WriteLine($"tern vm migrate: --max-bandwidth '{bw}' is not a rate (e.g. 100M for 100 MiB/s).");
                    return Task.FromResult(RunCommand.UsageError);
                }
                maxBandwidth = (long)bytes;
            }
            var body = new { to = parse.GetValue(to), downtimeLimitMs = downtimeMs, maxBandwidth, postcopy = parse.GetValue(postcopy) ? true : (bool?)null, autoConverge = parse.GetValue(autoConverge), postcopyAtOnce = parse.GetValue(atOnce) ? true : (bool?)null };
            return Run(parse, vm, body, ct);
        });
        return command;
    }

    /// <summary>Adds `drain` and `undrain` to `tern host`.</summary>
    public static void AddHostVerbs(Command host)
    {
        ArgumentNullException.ThrowIfNull(host);
        var drainName = new Argument<string>("node") { Description = "The host." };
        var downtime = new Option<string>("--downtime-limit") { Description = "Downtime limit of each migration.", DefaultValueFactory = _ => "10ms" };
        var drain = new Command("drain", "Stop placing guests on a host and live-migrate every guest off it; waits and reports each migration.") { drainName, downtime };
        drain.SetAction((parse, ct) =>
        {
            if (!TryParseDuration(parse.GetValue(downtime)!, out double ms))
            {
                parse.InvocationConfiguration.Error.WriteLine($"tern host drain: --downtime-limit '{parse.GetValue(downtime)}' is not a duration (e.g. 10ms).");
                return Task.FromResult(RunCommand.UsageError);
            }
            return Drain(parse, parse.GetValue(drainName)!, ms, ct);
        });
        host.Subcommands.Add(drain);

        var undrainName = new Argument<string>("node") { Description = "The host." };
        var undrain = new Command("undrain", "Let the scheduler place guests on a drained host again.") { undrainName };
        undrain.SetAction(async (parse, ct) =>
        {
            using var http = ClusterClientCommands.Client(parse);
            var (code, body) = await Send(parse, http, HttpMethod.Post, $"/api/hosts/{Uri.EscapeDataString(parse.GetValue(undrainName)!)}/undrain", null, ct);
            if (code == 0)
                parse.InvocationConfiguration.Output.WriteLine(ClusterClientCommands.JsonOutput(parse) ? body.ToJsonString() : $"host {parse.GetValue(undrainName)} takes guests again");
            return code;
        });
        host.Subcommands.Add(undrain);
    }

    /// <summary>Parses 10ms, 0.5s, 500us or a bare number of milliseconds.</summary>
    public static bool TryParseDuration(string text, out double milliseconds)
    {
        milliseconds = 0;
        text = text.Trim();
        double scale = 1;
        if (text.EndsWith("ms", StringComparison.OrdinalIgnoreCase))
            text = text[..^2];
        else if (text.EndsWith("us", StringComparison.OrdinalIgnoreCase))
            (text, scale) = (text[..^2], 0.001);
        else if (text.EndsWith('s'))
            (text, scale) = (text[..^1], 1000);
        if (!double.TryParse(text, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double v) || v <= 0)
            return false;
        milliseconds = v * scale;
        return true;
    }

    private static async Task<int> Run(ParseResult parse, string vm, object body, CancellationToken ct)
    {
        var output = parse.InvocationConfiguration.Output;
        var err = parse.InvocationConfiguration.Error;
        bool json = ClusterClientCommands.JsonOutput(parse);
        using var http = ClusterClientCommands.Client(parse);
        string path = $"/api/vms/{Uri.EscapeDataString(vm)}";
        var (code, started) = await Send(parse, http, HttpMethod.Post, path + "/migrate", JsonContent.Create(body), CancellationToken.None);
        if (code != 0)
        {
            if (json)
                output.WriteLine(new JsonObject { ["status"] = "refused", ["vm"] = vm, ["error"] = started["error"]?.GetValue<string>() }.ToJsonString());
            return code;
        }
        var bar = new ProgressBar(err, interactive: ReferenceEquals(err, Console.Error) && !Console.IsErrorRedirected);
        bool cancelSent = false;
        JsonNode status = started;
        // The VM's controller may be moving (its node died mid-migration): keep asking for a while.
        var patience = DateTime.UtcNow + TimeSpan.FromMinutes(3);
        while (!Tern.Cluster.Actors.HostDrain.IsFinal(status["status"]!.GetValue<string>()))
        {
            if (ct.IsCancellationRequested && !cancelSent)
            {
                cancelSent = true;
                await Send(parse, http, HttpMethod.Post, path + "/migrate/cancel", null, CancellationToken.None);
            }
            bar.Show(status);
            await Task.Delay(Poll, CancellationToken.None);
            var (c, s) = await Send(parse, http, HttpMethod.Get, path + "/migration", null, CancellationToken.None);
            if (c == 1 && DateTime.UtcNow < patience)
                continue;
            if (c != 0)
            {
                if (json)
                    output.WriteLine(new JsonObject { ["status"] = "unknown", ["vm"] = vm, ["error"] = s["error"]?.GetValue<string>() }.ToJsonString());
                return c;
            }
            status = s;
        }
        bar.Done();
        var result = Result(status);
        if (json)
            output.WriteLine(result.ToJsonString());
        else
            output.Write(Figures(result));
        return status["status"]!.GetValue<string>() == "completed" ? 0 : 1;
    }

    private static async Task<int> Cancel(ParseResult parse, string vm, CancellationToken ct)
    {
        using var http = ClusterClientCommands.Client(parse);
        var (code, status) = await Send(parse, http, HttpMethod.Post, $"/api/vms/{Uri.EscapeDataString(vm)}/migrate/cancel", null, ct);
        if (code != 0)
            return code;
        string state = status["status"]!.GetValue<string>();
        if (ClusterClientCommands.JsonOutput(parse))
            parse.InvocationConfiguration.Output.WriteLine(Result(status).ToJsonString());
        else
            parse.InvocationConfiguration.Output.WriteLine(state is "cancelling" or "preparing" or "running"
                ? $"cancelling the migration of {vm}; it keeps running on {status["from"]}"
                : $"no migration of {vm} in progress (last: {state})");
        return state is "cancelling" or "preparing" or "running" ? 0 : RunCommand.UsageError;
    }

    private static async Task<int> Drain(ParseResult parse, string host, double downtimeMs, CancellationToken ct)
    {
        var output = parse.InvocationConfiguration.Output;
        var err = parse.InvocationConfiguration.Error;
        bool json = ClusterClientCommands.JsonOutput(parse);
        using var http = ClusterClientCommands.Client(parse);
        http.Timeout = Timeout.InfiniteTimeSpan;
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, $"/api/hosts/{Uri.EscapeDataString(host)}/drain") { Content = JsonContent.Create(new { downtimeLimitMs = downtimeMs }) };
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
            if (!response.IsSuccessStatusCode)
            {
                var body = await response.Content.ReadFromJsonAsync<JsonElement>(ct);
                err.WriteLine($"tern: {(body.TryGetProperty("error", out var e) ? e.GetString() : response.ReasonPhrase)}");
                return (int)response.StatusCode < 500 ? RunCommand.UsageError : 1;
            }
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(ct));
            var results = new JsonArray();
            int failed = 0;
            if (!json)
                output.WriteLine($"draining {host}: the scheduler places no new guests on it");
            while (await reader.ReadLineAsync(ct) is { } line)
            {
                var node = JsonNode.Parse(line)!;
                if (node["vm"] is null)
                {
                    failed = node["failed"]!.GetValue<int>();
                    if (!json)
                        output.WriteLine($"{host} drained: {node["migrated"]} migrated, {failed} failed");
                    continue;
                }
                var result = Result(node);
                results.Add(result);
                if (!json)
                {
                    output.WriteLine(result["status"]!.GetValue<string>() == "completed"
                        ? $"  {result["vm"]}: {result["from"]} -> {result["to"]} in {result["total_time_ms"]:0.0} ms, downtime {Number(result, "downtime_ms")} ms, {Number(result, "bytes_sent")} bytes"
                        : $"  {result["vm"]}: {result["status"]}: {result["error"]}");
                }
            }
            if (json)
                output.WriteLine(new JsonObject { ["host"] = host, ["draining"] = true, ["migrations"] = results }.ToJsonString());
            return failed == 0 ? 0 : 1;
        }
        catch (HttpRequestException e)
        {
            err.WriteLine($"tern: cannot reach the cluster at {http.BaseAddress}: {e.Message}");
            return 1;
        }
    }

    // The flat object printed with --json: status, the hosts, then every figure QEMU's query-migrate names.
    internal static JsonObject Result(JsonNode status)
    {
        var result = new JsonObject
        {
            ["status"] = status["status"]?.GetValue<string>(),
            ["vm"] = status["vm"]?.GetValue<string>(),
            ["from"] = status["from"]?.GetValue<string>(),
            ["to"] = status["to"]?.GetValue<string>(),
            ["generation"] = status["generation"]?.GetValue<long>(),
        };
        if (status["figures"] is JsonObject figures)
        {
            foreach (var key in FigureKeys)
                result[key] = figures[key]?.DeepClone();
            if (figures["breakdown"] is JsonObject breakdown)
                result["breakdown"] = breakdown.DeepClone();
        }
        if (status["error"] is { } error)
            result["error"] = error.DeepClone();
        return result;
    }

    internal static string Figures(JsonObject result)
    {
        var text = new StringBuilder();
        text.AppendLine(result["status"]!.GetValue<string>() == "completed"
            ? $"migrated {result["vm"]}: {result["from"]} -> {result["to"]} (generation {result["generation"]})"
            : $"migration of {result["vm"]} {result["status"]}: {result["error"]}; it keeps running on {result["from"]}");
        foreach (var key in FigureKeys)
        {
            if (result[key] is { } value)
                text.AppendLine(CultureInfo.InvariantCulture, $"  {key,-18}{Number(result, key)}");
        }
        if (result["breakdown"] is JsonObject b)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"  downtime = pause {Number(b, "pause_ms")} + final copy {Number(b, "final_copy_ms")} ({Number(b, "final_pages")} pages, state {Number(b, "state_capture_ms")}) + ready wait {Number(b, "ready_wait_ms")} (target applied {Number(b, "target_apply_ms")}, loaded {Number(b, "target_load_ms")}) + go->started {Number(b, "go_to_started_ms")} ms");
            text.AppendLine(CultureInfo.InvariantCulture, $"  pre-copy: encode {Number(b, "precopy_encode_ms")}, write {Number(b, "precopy_write_ms")}, round waits {Number(b, "precopy_round_wait_ms")} ms");
        }
        return text.ToString();
    }

    private static string Number(JsonObject o, string key) => o[key] is JsonValue v && v.TryGetValue(out double d)
        ? (d == Math.Floor(d) ? d.ToString("0", CultureInfo.InvariantCulture) : d.ToString("0.000", CultureInfo.InvariantCulture))
        : "-";

    private static async Task<(int Code, JsonNode Body)> Send(ParseResult parse, HttpClient http, HttpMethod method, string path, HttpContent? content, CancellationToken ct)
    {
        var err = parse.InvocationConfiguration.Error;
        try
        {
            using var request = new HttpRequestMessage(method, path) { Content = content };
            using var response = await http.SendAsync(request, ct);
            var body = JsonNode.Parse(await response.Content.ReadAsStringAsync(ct)) ?? new JsonObject();
            if (response.IsSuccessStatusCode)
                return (0, body);
            err.WriteLine($"tern: {body["error"]?.GetValue<string>() ?? response.ReasonPhrase}");
            return ((int)response.StatusCode < 500 ? RunCommand.UsageError : 1, body);
        }
        catch (HttpRequestException e)
        {
            err.WriteLine($"tern: cannot reach the cluster at {http.BaseAddress}: {e.Message}");
            return (1, new JsonObject { ["error"] = e.Message });
        }
    }

    // The live progress line: redrawn in place on a terminal, one line per change otherwise.
    private sealed class ProgressBar(TextWriter err, bool interactive)
    {
        private string _last = "";

        public void Show(JsonNode status)
        {
            string line;
            if (status["progress"] is JsonObject p)
            {
                double sent = p["bytes_sent"]!.GetValue<double>(), remaining = p["remaining_bytes"]!.GetValue<double>();
                double fraction = sent + remaining > 0 ? sent / (sent + remaining) : 0;
                int filled = (int)Math.Round(fraction * 20);
                line = string.Create(CultureInfo.InvariantCulture,
                    $"[{new string('#', filled)}{new string('.', 20 - filled)}] {p["phase"]} round {p["round"]}  remaining {remaining / (1 << 20):0.0} MiB  dirty {p["dirty_rate"]!.GetValue<double>():0} pages/s  bandwidth {p["bandwidth_mibps"]!.GetValue<double>():0.0} MiB/s  expected downtime {p["expected_downtime_ms"]!.GetValue<double>():0.00} ms  throttle {p["throttle"]}%");
            }
            else
            {
                line = $"[{new string('.', 20)}] {status["status"]} -> {status["to"]}: round 0 (sending all of RAM)";
            }
            if (line == _last)
                return;
            _last = line;
            if (interactive)
                err.Write("\r" + line.PadRight(120));
            else
                err.WriteLine(line);
        }

        public void Done()
        {
            if (interactive && _last.Length > 0)
                err.WriteLine();
        }
    }
}
