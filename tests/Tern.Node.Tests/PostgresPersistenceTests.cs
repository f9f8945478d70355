// Three real `tern node` processes sharing a PostgreSQL journal: VMs created, every node
// stopped, the nodes started again, and the VM specs come back from the database. The server
// is Debian's PostgreSQL, started by .ci/postgres (CI runs it from .ci/run); its connection
// string arrives in TERN_TEST_POSTGRES. Each run gets a database of its own, dropped afterwards.
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Npgsql;
using Tern.Tests.Shared;

namespace Tern.Node.Tests;

[Collection("nodes")]
public sealed class PostgresPersistenceTests : IAsyncLifetime, IDisposable
{
    private const string Variable = "TERN_TEST_POSTGRES";
    private readonly string _dir = Directory.CreateTempSubdirectory("tern-pg-").FullName;
    private readonly List<NodeProcess> _nodes = [];
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(60) };
    private readonly string _database = $"tern_test_{Guid.NewGuid():N}";
    private string _admin = "";
    private string _connection = "";

    public async Task InitializeAsync()
    {
        // Never a silent pass: without the server the test fails, in CI and here alike.
        _admin = Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } v ? v
            : throw new InvalidOperationException($"{Variable} is not set, so PostgreSQL is absent: start it with `eval \"$(bash .ci/postgres start)\"` (CI: .ci/run does)");
        await using var admin = new NpgsqlConnection(_admin);
        await admin.OpenAsync();
        await using (var create = new NpgsqlCommand($"CREATE DATABASE {_database}", admin))
            await create.ExecuteNonQueryAsync();
        _connection = new NpgsqlConnectionStringBuilder(_admin) { Database = _database }.ConnectionString;
    }

    private async Task<List<string>> StartClusterAsync()
    {
        var ports = Enumerable.Range(0, 3).Select(_ => NodeProcess.FreePort()).ToList();
        // Settings through the environment, as deploy/ and k8s/ give them.
        var common = new Dictionary<string, string>
        {
            ["TERN_PERSISTENCE"] = "postgres",
            ["TERN_POSTGRES_CONNECTION"] = _connection,
            ["TERN_SEEDS"] = $"127.0.0.1:{ports[0]}",
            ["TERN_HTTP_PORT"] = "0",
            ["TERN_MEMORY"] = "512M",
        };
        for (int i = 0; i < 3; i++)
        {
            var env = new Dictionary<string, string>(common)
            {
                ["TERN_NODE_NAME"] = $"node-{i + 1}",
                ["TERN_DATA_DIR"] = Path.Combine(_dir, $"node-{i + 1}"),
                ["TERN_PORT"] = ports[i].ToString(System.Globalization.CultureInfo.InvariantCulture),
            };
            _nodes.Add(NodeProcess.Start(env));
        }
        var apis = new List<string>();
        foreach (var n in _nodes)
            apis.Add(await n.WaitForApiAsync());
        var deadline = DateTime.UtcNow.AddSeconds(120);
        while (true)
        {
            try
            {
                if ((await _http.GetFromJsonAsync<JsonElement[]>(apis[0] + "/api/hosts"))!.Length == 3)
                {
                    await NodeProcess.WaitForMembersUpAsync(_http, apis, 3, () => string.Join("\n---\n", _nodes.Select(n => n.Log)));
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

    private void StopAll()
    {
        for (int i = _nodes.Count - 1; i >= 0; i--)
            _nodes[i].Dispose();
        _nodes.Clear();
    }

    [Fact]
    public async Task Three_nodes_on_postgres_bring_the_vm_specs_back_after_a_full_restart()
    {
        string kernel = Path.Combine(_dir, "ticker.elf");
        await File.WriteAllBytesAsync(kernel, TickerGuest.Elf());
        var apis = await StartClusterAsync();

        var web1 = await _http.PostAsJsonAsync(apis[0] + "/api/vms", new { name = "pg-web1", kernel, memoryBytes = 64UL << 20, host = "node-2" });
        Assert.Equal(HttpStatusCode.Created, web1.StatusCode);
        var web2 = await _http.PostAsJsonAsync(apis[1] + "/api/vms", new { name = "pg-web2", kernel, memoryBytes = 48UL << 20, harts = 2 });
        Assert.Equal(HttpStatusCode.Created, web2.StatusCode);
        var stopped = await (await _http.PostAsync(apis[2] + "/api/vms/pg-web2/stop", null)).Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("stopped", stopped.GetProperty("state").GetString());

        // The journal is in PostgreSQL, not in the nodes' data dirs.
        await using (var db = new NpgsqlConnection(_connection))
        {
            await db.OpenAsync();
            await using var count = new NpgsqlCommand("SELECT count(*) FROM journal WHERE persistence_id IN ('vm-pg-web1', 'vm-pg-web2')", db);
            Assert.True((long)(await count.ExecuteScalarAsync())! >= 4);
        }
        Assert.Empty(Directory.GetFiles(_dir, "*.db", SearchOption.AllDirectories));

        StopAll();
        apis = await StartClusterAsync();

        var back2 = await _http.GetFromJsonAsync<JsonElement>($"{apis[2]}/api/vms/pg-web2");
        Assert.Equal(("stopped", 48L << 20, 2), (back2.GetProperty("state").GetString(), back2.GetProperty("memoryBytes").GetInt64(), back2.GetProperty("harts").GetInt32()));
        // pg-web1 was running: it comes back by itself as a new generation. Until its controller has
        // probed the old host it may still report the recorded generation 1 as running.
        var deadline = DateTime.UtcNow.AddSeconds(90);
        JsonElement back1;
        while ((back1 = await _http.GetFromJsonAsync<JsonElement>($"{apis[0]}/api/vms/pg-web1")).GetProperty("state").GetString() != "running"
            || back1.GetProperty("generation").GetInt64() < 2)
        {
            Assert.True(DateTime.UtcNow < deadline, $"pg-web1 did not come back: {back1}");
            await Task.Delay(250);
        }
        Assert.Equal((64L << 20, 2L), (back1.GetProperty("memoryBytes").GetInt64(), back1.GetProperty("generation").GetInt64()));
        var names = (await _http.GetFromJsonAsync<JsonElement[]>($"{apis[1]}/api/vms"))!.Select(v => v.GetProperty("name").GetString()).Order();
        Assert.Equal(["pg-web1", "pg-web2"], names);
    }

    public void Dispose() => _http.Dispose();

    public async Task DisposeAsync()
    {
        StopAll();
        if (_admin.Length > 0)
        {
            await using var admin = new NpgsqlConnection(_admin);
            await admin.OpenAsync();
            await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS {_database} WITH (FORCE)", admin);
            await drop.ExecuteNonQueryAsync();
        }
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
