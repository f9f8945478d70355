// `tern node start`: runs this process as one host of a Tern cluster (Akka node, hypervisor,
// HTTP API) until Ctrl-C or SIGTERM, which leave the cluster gracefully. `tern node probe`
// asks a node's health endpoint (the container HEALTHCHECK). The flags are made from
// NodeConfiguration's table, so a flag, its environment variable and its appsettings key
// cannot drift apart; precedence: flag > variable > --config file > data-dir file > binary-dir file.
using System.CommandLine;
using Tern.Node;

namespace Tern.Cli.Commands;

/// <summary>The `tern node` verbs.</summary>
public static class NodeCommand
{
    /// <summary>Exit code of a node that could not start or join (port in use, database unreachable, join timeout).</summary>
    public const int StartFailed = 1;

    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var startOptions = new SettingOptions();
        var start = new Command("start", "Run this process as a node of a Tern cluster.");
        startOptions.AddTo(start);
        start.SetAction(async (parse, ct) =>
        {
            var err = parse.InvocationConfiguration.Error;
            if (!TryLoad(parse, startOptions, err, out var settings))
                return RunCommand.UsageError;
            if (NodeHost.CheckListenAddresses(settings) is { } problem)
            {
                err.WriteLine($"tern node start: {problem}");
                return StartFailed;
            }
            try
            {
                await NodeHost.RunAsync(settings, parse.InvocationConfiguration.Output, ct);
                return 0;
            }
            catch (NodeStartException e)
            {
                err.WriteLine($"tern node start: {e.Message}");
                return StartFailed;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or Akka.Configuration.ConfigurationException or AggregateException)
            {
                err.WriteLine($"tern node start: the node failed to start: {e.GetBaseException().Message}");
                return StartFailed;
            }
        });

        var probeOptions = new SettingOptions();
        var path = new Option<string>("--path") { Description = "The health path to ask.", DefaultValueFactory = _ => NodeHealth.LivePath };
        var probe = new Command("probe", "Ask the node configured like `tern node start` (same flags, variables and files) for a health endpoint; exit status 0 when it answers 200.") { path };
        probeOptions.AddTo(probe);
        probe.SetAction(async (parse, ct) =>
        {
            var err = parse.InvocationConfiguration.Error;
            if (!TryLoad(parse, probeOptions, err, out var settings))
                return RunCommand.UsageError;
            // A node bound to every address answers on loopback.
            string host = settings.HttpHost is "0.0.0.0" or "::" or "[::]" ? "127.0.0.1" : settings.HttpHost;
            var url = new UriBuilder("http", host, settings.HttpPort, parse.GetValue(path)).Uri;
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
            try
            {
                using var answer = await http.GetAsync(url, ct);
                parse.InvocationConfiguration.Output.WriteLine($"{url}: {(int)answer.StatusCode} {await answer.Content.ReadAsStringAsync(ct)}");
                return answer.IsSuccessStatusCode ? 0 : 1;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                err.WriteLine($"tern node probe: {url}: {e.Message}");
                return 1;
            }
        });
        return new Command("node", "Run a node of a Tern cluster.") { start, probe };
    }

    private static bool TryLoad(ParseResult parse, SettingOptions options, TextWriter err, out NodeSettings settings)
    {
        try
        {
            settings = NodeConfiguration.Load(options.Values(parse), Environment.GetEnvironmentVariables(), AppContext.BaseDirectory);
            if (NodeTelemetry.CheckEnvironment() is { } bad)
                throw new NodeConfigurationException(bad);
            // The cluster runs `tern pv|vg|lv|pvmove` through this process's own command tree.
            settings = settings with { Cluster = settings.Cluster with { GuestIoSampleEvery = NodeTelemetry.GuestIoSampleEvery(), StorageVerbs = StorageCommands.Runner } };
            return true;
        }
        catch (NodeConfigurationException e)
        {
            err.WriteLine($"tern node {parse.CommandResult.Command.Name}: {e.Message}");
            settings = null!;
            return false;
        }
    }

    // One option per row of NodeConfiguration's table, plus --config.
    private sealed class SettingOptions
    {
        private readonly List<(string Key, Option Option)> _options = [];

        public SettingOptions()
        {
            foreach (var s in NodeConfiguration.Settings.Append(NodeConfiguration.ConfigFile))
            {
                string description = $"{s.Description} (env {s.Environment}; default {s.Default})";
                Option option = s.Key == "Seeds"
                    ? new Option<string[]>(s.Flag) { Description = description, AllowMultipleArgumentsPerToken = true }
                    : new Option<string?>(s.Flag) { Description = description };
                _options.Add((s.Key, option));
            }
        }

        public void AddTo(Command command)
        {
            foreach (var (_, option) in _options)
                command.Options.Add(option);
        }

        public Dictionary<string, string> Values(ParseResult parse)
        {
            var values = new Dictionary<string, string>();
            foreach (var (key, option) in _options)
            {
                string? value = option switch
                {
                    Option<string[]> many => parse.GetValue(many) is { Length: > 0 } v ? string.Join(',', v) : null,
                    Option<string?> one => parse.GetValue(one),
                    _ => null,
                };
                if (value is not null)
                    values[key] = value;
            }
            return values;
        }
    }
}
