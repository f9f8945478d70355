// `tern vm ...` and `tern host list`: clients of a node's HTTP API. The node is found with
// --api, else TERN_API, else the local cluster recorded in TERN_HOME by `tern cluster up`, else
// http://127.0.0.1:8080; the token with --token, else TERN_API_TOKEN, else the record's token
// (only when the address came from the record too).
// Output is an aligned table, or the API's JSON with --json.
using System.CommandLine;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using Tern.Cluster.State;

namespace Tern.Cli.Commands;

/// <summary>The `tern vm` and `tern host` verbs.</summary>
public static class ClusterClientCommands
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    private static readonly Option<string?> Api = new("--api") { Description = "A node's API address (env TERN_API; default http://127.0.0.1:8080).", Recursive = true };
    private static readonly Option<string?> Token = new("--token") { Description = "API token for mutating calls (env TERN_API_TOKEN).", Recursive = true };
    private static readonly Option<bool> Json = new("--json") { Description = "Print the API's JSON instead of a table.", Recursive = true };

    /// <summary>Whether --json was given.</summary>
    internal static bool JsonOutput(ParseResult parse) => parse.GetValue(Json);

    /// <summary>`tern host list`.</summary>
    public static Command Host()
    {
        var list = new Command("list", "List the cluster's hosts with capacity and load.");
        list.SetAction((parse, ct) => Call(parse, HttpMethod.Get, "/api/hosts", null, HostTable, ct));
        var host = new Command("host", "Hosts of a Tern cluster.") { list, Api, Token, Json };
        MigrationCommands.AddHostVerbs(host);
        return host;
    }

    /// <summary>`tern events [--follow]`.</summary>
    public static Command Events()
    {
        var follow = new Option<bool>("--follow", "-f") { Description = "Keep printing new events (until Ctrl-C)." };
        var events = new Command("events", "Print the cluster's recent events: VMs created, placed, started, stopped, restarted, lost, deleted; hosts joining and leaving.") { follow, Api, Token, Json };
        events.SetAction((parse, ct) => EventsAsync(parse, parse.GetValue(follow), ct));
        return events;
    }

    /// <summary>`tern vm create|list|show|start|stop|delete|logs|console`.</summary>
    public static Command Vm()
    {
        var vm = new Command("vm", "Virtual machines of a Tern cluster.") { Api, Token, Json };

        var name = new Option<string>("--name") { Description = "VM name (lower-case letters, digits, '-').", Required = true };
        var mem = new Option<string>("--mem") { Description = "Guest RAM, e.g. 256M.", DefaultValueFactory = _ => "256M" };
        var smp = new Option<int>("--smp") { Description = "Harts.", DefaultValueFactory = _ => 1 };
        var kernel = new Option<string>("--kernel") { Description = "Kernel image: a path readable on the hosts.", Required = true };
        var bios = new Option<string?>("--bios") { Description = "Firmware image path." };
        var initrd = new Option<string?>("--initrd") { Description = "Initial RAM disk path." };
        var append = new Option<string?>("--append") { Description = "Kernel command line." };
        var disks = new Option<string[]>("--disk") { Description = "A disk: an image path on the host, or a logical volume of the cluster's pool written lv:VG/LV; repeatable." };
        var host = new Option<string?>("--host") { Description = "Run on this host (explicit placement)." };
        var clock = new Option<string?>("--clock") { Description = "Guest time: host (default) or icount (deterministic, derived from instructions)." };
        var create = new Command("create", "Create and start a VM.") { name, mem, smp, kernel, bios, initrd, append, disks, host, clock };
        create.SetAction((parse, ct) =>
        {
            if (!SizeParser.TryParse(parse.GetValue(mem)!, out ulong bytes))
            {
                parse.InvocationConfiguration.Error.WriteLine($"tern vm create: --mem '{parse.GetValue(mem)}' is not a size (e.g. 256M).");
                return Task.FromResult(RunCommand.UsageError);
            }
            string[] diskList = parse.GetValue(disks) ?? [];
            if (diskList.Select(VmSpecRules.CheckDisk).FirstOrDefault(r => r is not null) is { } badDisk)
            {
                parse.InvocationConfiguration.Error.WriteLine($"tern vm create: {badDisk}");
                return Task.FromResult(RunCommand.UsageError);
            }
            var body = new
            {
                name = parse.GetValue(name),
                kernel = Path.GetFullPath(parse.GetValue(kernel)!),
                memoryBytes = bytes,
                harts = parse.GetValue(smp),
                bios = parse.GetValue(bios) is { } b ? Path.GetFullPath(b) : null,
                initrd = parse.GetValue(initrd) is { } r ? Path.GetFullPath(r) : null,
                append = parse.GetValue(append),
                disks = diskList.Select(d => d.StartsWith(VmSpecRules.LvDiskPrefix, StringComparison.Ordinal) ? d : Path.GetFullPath(d)).ToArray(),
                host = parse.GetValue(host),
                clock = parse.GetValue(clock),
            };
            return Call(parse, HttpMethod.Post, "/api/vms", JsonContent.Create(body), VmTable, ct);
        });
        vm.Subcommands.Add(create);

        var list = new Command("list", "List the VMs.");
        list.SetAction((parse, ct) => Call(parse, HttpMethod.Get, "/api/vms", null, VmTable, ct));
        vm.Subcommands.Add(list);

        foreach (var (verb, method, suffix, what) in new[]
        {
            ("show", HttpMethod.Get, "", "Show a VM."),
            ("start", HttpMethod.Post, "/start", "Start a stopped VM (a new generation)."),
            ("stop", HttpMethod.Post, "/stop", "Stop a running VM."),
            ("delete", HttpMethod.Delete, "", "Stop and forget a VM."),
        })
        {
            var vmName = new Argument<string>("name") { Description = "The VM." };
            var command = new Command(verb, what) { vmName };
            command.SetAction((parse, ct) => Call(parse, method, $"/api/vms/{Uri.EscapeDataString(parse.GetValue(vmName)!)}{suffix}", null, verb == "show" ? VmDetail : VmTable, ct));
            vm.Subcommands.Add(command);
        }

        var logsName = new Argument<string>("name") { Description = "The VM." };
        var follow = new Option<bool>("--follow", "-f") { Description = "Keep printing new output until the guest ends (or Ctrl-C)." };
        var logs = new Command("logs", "Print the VM's console output so far (its last 64 KiB).") { logsName, follow };
        logs.SetAction((parse, ct) => Logs(parse, parse.GetValue(logsName)!, parse.GetValue(follow), ct));
        vm.Subcommands.Add(logs);

        var consoleName = new Argument<string>("name") { Description = "The VM." };
        var console = new Command("console", "Attach this terminal to the VM's console (Ctrl-A X detaches); typing needs the API token.") { consoleName };
        console.SetAction((parse, ct) =>
        {
            var (api, token) = Endpoint(parse);
            return ConsoleClient.RunAsync(api, token, parse.GetValue(consoleName)!, parse.InvocationConfiguration.Output, parse.InvocationConfiguration.Error, ct);
        });
        vm.Subcommands.Add(console);
        vm.Subcommands.Add(MigrationCommands.Migrate());
        return vm;
    }

    /// <summary>An HTTP client for the node API named by --api / TERN_API, with the token.</summary>
    internal static HttpClient Client(ParseResult parse)
    {
        var (api, token) = Endpoint(parse);
        var http = new HttpClient { BaseAddress = new Uri(api), Timeout = TimeSpan.FromSeconds(60) };
        if (token is { Length: > 0 })
            http.DefaultRequestHeaders.Authorization = new("Bearer", token);
        return http;
    }

    /// <summary>The API address and token a command uses (see the top of this file).</summary>
    internal static (string Api, string? Token) Endpoint(ParseResult parse)
    {
        string? token = parse.GetValue(Token) ?? (Environment.GetEnvironmentVariable("TERN_API_TOKEN") is { Length: > 0 } t ? t : null);
        if ((parse.GetValue(Api) ?? Environment.GetEnvironmentVariable("TERN_API")) is { Length: > 0 } api)
            return (api, token);
        LocalCluster? local = null;
        try
        {
            local = LocalCluster.Read(LocalCluster.Home());
        }
        catch (InvalidDataException)
        {
            // a damaged record: fall back to the default address; `tern cluster status` says what is wrong
        }
        return local is null ? ("http://127.0.0.1:8080", token) : (local.Api, token ?? local.Token);
    }

    private static async Task<int> Call(ParseResult parse, HttpMethod method, string path, HttpContent? content, Func<JsonElement, string> table, CancellationToken ct)
    {
        var output = parse.InvocationConfiguration.Output;
        var err = parse.InvocationConfiguration.Error;
        using var trace = CliTracing.Begin(parse);
        using var http = Client(parse);
        HttpResponseMessage response;
        try
        {
            using var request = new HttpRequestMessage(method, path) { Content = content };
            response = await http.SendAsync(request, ct);
        }
        catch (HttpRequestException e)
        {
            err.WriteLine($"tern: cannot reach the cluster at {http.BaseAddress}: {e.Message}");
            return 1;
        }
        using (response)
        {
            var body = await response.Content.ReadFromJsonAsync<JsonElement>(ct);
            if (!response.IsSuccessStatusCode)
            {
                string reason = body.ValueKind == JsonValueKind.Object && body.TryGetProperty("error", out var e) ? e.GetString() ?? "" : response.ReasonPhrase ?? "";
                err.WriteLine($"tern: {reason}");
                return (int)response.StatusCode < 500 ? RunCommand.UsageError : 1;
            }
            output.Write(parse.GetValue(Json) ? JsonSerializer.Serialize(body, Indented) + Environment.NewLine : table(body));
            return 0;
        }
    }

    private static async Task<int> Logs(ParseResult parse, string vm, bool follow, CancellationToken ct)
    {
        var output = parse.InvocationConfiguration.Output;
        var err = parse.InvocationConfiguration.Error;
        using var http = Client(parse);
        http.Timeout = Timeout.InfiniteTimeSpan;
        try
        {
            using var response = await http.GetAsync($"/api/vms/{Uri.EscapeDataString(vm)}/console", HttpCompletionOption.ResponseHeadersRead, ct);
            if (!response.IsSuccessStatusCode)
            {
                var body = await response.Content.ReadFromJsonAsync<JsonElement>(ct);
                err.WriteLine($"tern: {(body.TryGetProperty("error", out var e) ? e.GetString() : response.ReasonPhrase)}");
                return RunCommand.UsageError;
            }
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(ct));
            // The node sends the output so far as the first event; without --follow that is all
            // we print (waiting at most 2 s for a guest that has said nothing yet).
            using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct);
            if (!follow)
                limit.CancelAfter(TimeSpan.FromSeconds(2));
            while (true)
            {
                string? line = await reader.ReadLineAsync(limit.Token);
                if (line is null || line.StartsWith("event: end", StringComparison.Ordinal))
                    return 0;
                if (line.StartsWith("data: ", StringComparison.Ordinal))
                {
                    output.Write(JsonSerializer.Deserialize<string>(line["data: ".Length..]));
                    output.Flush();
                    if (!follow)
                        return 0;
                }
            }
        }
        catch (OperationCanceledException)
        {
            return 0;
        }
        catch (HttpRequestException e)
        {
            err.WriteLine($"tern: cannot reach the cluster at {http.BaseAddress}: {e.Message}");
            return 1;
        }
    }

    private static async Task<int> EventsAsync(ParseResult parse, bool follow, CancellationToken ct)
    {
        var output = parse.InvocationConfiguration.Output;
        var err = parse.InvocationConfiguration.Error;
        bool json = parse.GetValue(Json);
        using var http = Client(parse);
        http.Timeout = Timeout.InfiniteTimeSpan;
        try
        {
            using var response = await http.GetAsync($"/api/events?follow={(follow ? "true" : "false")}", HttpCompletionOption.ResponseHeadersRead, ct);
            if (!response.IsSuccessStatusCode)
            {
                err.WriteLine($"tern: the node answered {(int)response.StatusCode} {response.ReasonPhrase}");
                return 1;
            }
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(ct));
            if (!json)
                output.WriteLine(EventLine("TIME", "KIND", "VM", "HOST", "GENERATION", "DETAIL"));
            while (await reader.ReadLineAsync(ct) is { } line)
            {
                if (!line.StartsWith("data: ", StringComparison.Ordinal))
                    continue;
                var e = JsonDocument.Parse(line["data: ".Length..]).RootElement;
                output.WriteLine(json ? e.GetRawText() : EventLine(S(e, "time"), S(e, "kind"), S(e, "vm"), S(e, "host"), S(e, "generation"), S(e, "detail")));
                output.Flush();
            }
            return 0;
        }
        catch (OperationCanceledException)
        {
            return 0;
        }
        catch (HttpRequestException e)
        {
            err.WriteLine($"tern: cannot reach the cluster at {http.BaseAddress}: {e.Message}");
            return 1;
        }
    }

    // Events stream, so their columns have fixed widths instead of being measured.
    private static string EventLine(string time, string kind, string vm, string host, string generation, string detail) =>
        $"{time,-24}  {kind,-13}  {vm,-16}  {host,-10}  {generation,-10}  {detail}".TrimEnd();

    /// <summary>The hosts of a GET /api/hosts answer as an aligned table.</summary>
    internal static string HostTable(JsonElement body) => Table(body,
        ["NAME", "ADDRESS", "PID", "MEMORY", "USED", "HARTS", "GUESTS", "DRAINING", "PVS", "PV SIZE", "PV FREE"],
        h => [S(h, "name"), S(h, "address"), S(h, "processId"), Mib(h, "memoryBytes"), Mib(h, "usedMemoryBytes"), S(h, "harts"), S(h, "guests"), S(h, "draining"),
            Pvs(h).Count().ToString(CultureInfo.InvariantCulture), MibOf(Pvs(h).Sum(p => p.GetProperty("sizeBytes").GetInt64())), MibOf(Pvs(h).Sum(p => p.GetProperty("freeBytes").GetInt64()))]);

    private static IEnumerable<JsonElement> Pvs(JsonElement host) =>
        host.TryGetProperty("pvs", out var pvs) && pvs.ValueKind == JsonValueKind.Array ? pvs.EnumerateArray() : [];

    private static string MibOf(long bytes) => (bytes >> 20).ToString(CultureInfo.InvariantCulture) + "M";

    /// <summary>One VM or a list of VMs from the API as an aligned table.</summary>
    internal static string VmTable(JsonElement body) => Table(body.ValueKind == JsonValueKind.Array ? body : JsonSerializer.SerializeToElement(new[] { body }),
        ["NAME", "STATE", "DESIRED", "HOST", "GENERATION", "MEMORY", "HARTS", "LAST EVENT"],
        v => [S(v, "name"), S(v, "state"), S(v, "desired"), S(v, "host"), S(v, "generation"), Mib(v, "memoryBytes"), S(v, "harts"), S(v, "lastError")]);

    /// <summary>
    /// One VM from the API as `tern vm show` prints it: a field a line, with where it runs, its
    /// generation, how often the cluster restarted it and why the last time.
    /// </summary>
    internal static string VmDetail(JsonElement vm)
    {
        string disks = vm.TryGetProperty("disks", out var d) && d.ValueKind == JsonValueKind.Array && d.GetArrayLength() > 0
            ? string.Join(", ", d.EnumerateArray().Select(x => x.GetString()))
            : "-";
        (string, string)[] fields =
        [
            ("Name", S(vm, "name")), ("State", S(vm, "state")), ("Desired", S(vm, "desired")), ("Host", S(vm, "host")),
            ("Generation", S(vm, "generation")), ("Restarts", S(vm, "restarts")), ("Last restart", S(vm, "lastRestartReason")),
            ("Memory", Mib(vm, "memoryBytes")), ("Harts", S(vm, "harts")), ("Clock", S(vm, "clock")), ("Disks", disks), ("Last event", S(vm, "lastError")),
        ];
        var text = new System.Text.StringBuilder();
        foreach (var (name, value) in fields)
            text.Append(CultureInfo.InvariantCulture, $"{name + ":",-14}{value}").AppendLine();
        return text.ToString();
    }

    private static string Table(JsonElement rows, string[] headers, Func<JsonElement, string[]> cells)
    {
        var lines = new List<string[]> { headers };
        lines.AddRange(rows.EnumerateArray().Select(cells));
        var widths = headers.Select((_, i) => lines.Max(l => l[i].Length)).ToArray();
        var text = new System.Text.StringBuilder();
        foreach (var l in lines)
            text.AppendLine(string.Join("  ", l.Select((c, i) => c.PadRight(widths[i]))).TrimEnd());
        return text.ToString();
    }

    private static string S(JsonElement e, string property) => e.TryGetProperty(property, out var v) && v.ValueKind != JsonValueKind.Null
        ? v.ValueKind == JsonValueKind.String ? v.GetString()! : v.GetRawText()
        : "-";

    private static string Mib(JsonElement e, string property) =>
        e.TryGetProperty(property, out var v) ? (v.GetUInt64() >> 20).ToString(CultureInfo.InvariantCulture) + "M" : "-";
}
