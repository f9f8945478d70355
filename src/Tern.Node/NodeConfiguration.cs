// Every setting of a node process in one table (configuration key, environment variable, flag,
// default), read with Microsoft.Extensions.Configuration from, lowest precedence first:
// appsettings.json beside the binary, appsettings.json in the data dir, the --config file, the
// environment, the command line. deploy/ and k8s/ set the environment names of this table, and
// their tests check them against it. A bad value is one clear line, never a stack trace.
using System.Collections;
using System.Globalization;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Configuration;
using Tern.Cluster;

namespace Tern.Node;

/// <summary>One setting of a node: where it is read from and what it means.</summary>
/// <param name="Key">Its key under the <c>Tern</c> section of appsettings.json.</param>
/// <param name="Environment">Its environment variable.</param>
/// <param name="Flag">Its `tern node start` flag.</param>
/// <param name="Default">Its default, as documented.</param>
/// <param name="Description">What it sets.</param>
/// <param name="RequiredInDeployment">Whether a container deployment (deploy/, k8s/) must set it.</param>
public sealed record NodeSetting(string Key, string Environment, string Flag, string Default, string Description, bool RequiredInDeployment = false);

/// <summary>A setting that is missing, malformed or out of range; the message is one line naming it.</summary>
public sealed class NodeConfigurationException(string message) : Exception(message);

/// <summary>Reads a node's <see cref="NodeSettings"/> from files, the environment and the command line.</summary>
public static partial class NodeConfiguration
{
    /// <summary>The section of appsettings.json that holds the node's settings.</summary>
    public const string Section = "Tern";

    /// <summary>The optional settings file looked for beside the binary and in the data dir.</summary>
    public const string AppSettingsFile = "appsettings.json";

    /// <summary>The settings file given explicitly (its flag and variable); it must exist.</summary>
    public static readonly NodeSetting ConfigFile = new("Config", "TERN_CONFIG", "--config", "none",
        "A JSON settings file (like appsettings.json); it must exist.");

    /// <summary>Every setting of a node.</summary>
    public static readonly IReadOnlyList<NodeSetting> Settings =
    [
        new("NodeName", "TERN_NODE_NAME", "--name", "node-1", "Host name, unique in the cluster.", RequiredInDeployment: true),
        new("ClusterName", "TERN_CLUSTER_NAME", "--cluster-name", "tern", "The cluster's (ActorSystem's) name; every node of one cluster uses the same."),
        new("DataDir", "TERN_DATA_DIR", "--data-dir", "data/NAME", "Directory for this node's files; may hold an appsettings.json.", RequiredInDeployment: true),
        new("Hostname", "TERN_HOSTNAME", "--hostname", "127.0.0.1", "Address remoting binds to (0.0.0.0 in a container).", RequiredInDeployment: true),
        new("PublicHostname", "TERN_PUBLIC_HOSTNAME", "--public-hostname", "the hostname", "Address the other nodes reach this one by (a pod or service name).", RequiredInDeployment: true),
        new("Port", "TERN_PORT", "--port", "4053", "Remoting port.", RequiredInDeployment: true),
        new("Seeds", "TERN_SEEDS", "--seed", "none: a new cluster", "Seed nodes as host:port or akka.tcp://CLUSTER@host:port (flag repeatable, variable comma-separated).", RequiredInDeployment: true),
        new("JoinTimeout", "TERN_JOIN_TIMEOUT", "--join-timeout", "60s", "How long a node with seeds may take to become Up before it exits with an error (e.g. 500ms, 30s, 2m)."),
        new("DownAfter", "TERN_DOWN_AFTER", "--down-after", "20s", "How long a host may stay unreachable before the others down it and restart its VMs elsewhere (e.g. 5s)."),
        new("HttpHost", "TERN_HTTP_HOST", "--http-host", "127.0.0.1", "Address of the HTTP API (0.0.0.0 in a container).", RequiredInDeployment: true),
        new("HttpPort", "TERN_HTTP_PORT", "--http-port", "8080", "Port of the HTTP API and the health endpoints.", RequiredInDeployment: true),
        new("Memory", "TERN_MEMORY", "--memory", "2G", "Memory this host gives guests in total (K, M, G, T suffixes; a bare number is MiB)."),
        new("ApiToken", "TERN_API_TOKEN", "--api-token", "none: no check", "Token required on mutating API calls.", RequiredInDeployment: true),
        new("Persistence", "TERN_PERSISTENCE", "--persistence", "sqlite", "Journal database: sqlite (embedded) or postgres.", RequiredInDeployment: true),
        new("Journal", "TERN_JOURNAL", "--journal", "Data Source=DATA-DIR/tern.db", "SQLite connection string; every node of a local cluster gives the same file."),
        new("PostgresConnection", "TERN_POSTGRES_CONNECTION", "--postgres", "none", "Npgsql connection string (Host=...;Database=...;Username=...;Password=...); required with postgres.", RequiredInDeployment: true),
        new("FaultInjection", "TERN_FAULT_INJECTION", "--fault-injection", "off", "Tests only: on runs remoting through Akka's throttler (addresses akka.trttl.tcp://...) and enables POST /api/debug/partition; every node of a cluster needs the same value."),
    ];

    /// <summary>
    /// Variables the node reads from the environment only (no key, no flag): OpenTelemetry's
    /// standard ones and NodeTelemetry's switches.
    /// </summary>
    public static readonly IReadOnlyList<NodeSetting> EnvironmentOnly =
    [
        new("", "OTEL_EXPORTER_OTLP_ENDPOINT", "", "none: no export", "OTLP endpoint; traces, metrics and logs are exported when it is set (Jaeger: http://jaeger:4317).", RequiredInDeployment: true),
        new("", "OTEL_EXPORTER_OTLP_PROTOCOL", "", "grpc", "grpc (port 4317) or http/protobuf (port 4318), read by the OTLP exporter."),
        new("", "OTEL_SERVICE_NAME", "", "tern-node", "The service name traces are filed under."),
        new("", NodeTelemetry.LogFormatVariable, "", "simple", "Console log lines: simple or json."),
        new("", NodeTelemetry.GuestIoSampleVariable, "", "1000", "One guest disk operation in N becomes a span; 0 traces none."),
    ];

    /// <summary>The setting with <paramref name="key"/>.</summary>
    public static NodeSetting Get(string key) => Settings.Single(s => s.Key == key);

    /// <summary>
    /// Reads the settings. <paramref name="commandLine"/> maps setting keys (and "Config") to the
    /// values given as flags; <paramref name="environment"/> is the process environment;
    /// <paramref name="binaryDirectory"/> is where an appsettings.json beside the binary would be.
    /// </summary>
    /// <exception cref="NodeConfigurationException">a setting is malformed, unknown or missing.</exception>
    public static NodeSettings Load(IReadOnlyDictionary<string, string> commandLine, IDictionary environment, string binaryDirectory)
    {
        ArgumentNullException.ThrowIfNull(commandLine);
        ArgumentNullException.ThrowIfNull(environment);
        ArgumentNullException.ThrowIfNull(binaryDirectory);
        foreach (var key in commandLine.Keys.Where(k => k != ConfigFile.Key && Settings.All(s => s.Key != k)))
            throw new ArgumentException($"'{key}' is not a node setting", nameof(commandLine));
        var env = new Dictionary<string, string?>();
        foreach (var setting in Settings)
        {
            if (environment[setting.Environment] is string { Length: > 0 } value)
                env[$"{Section}:{setting.Key}"] = value;
        }
        var cmd = commandLine.Where(p => p.Key != ConfigFile.Key).ToDictionary(p => $"{Section}:{p.Key}", p => (string?)p.Value);
        string? configFile = commandLine.GetValueOrDefault(ConfigFile.Key) ?? (environment[ConfigFile.Environment] as string is { Length: > 0 } e ? e : null);
        if (configFile is not null && !File.Exists(configFile))
            throw new NodeConfigurationException($"{ConfigFile.Flag} {configFile}: no such file");

        // The data dir may hold settings of its own, so find it first from everything else.
        var first = Build(binaryDirectory, dataDir: null, configFile, env, cmd);
        string name = first[$"{Section}:NodeName"] ?? "node-1";
        string dataDir = first[$"{Section}:DataDir"] ?? Path.Combine("data", name);
        var config = Build(binaryDirectory, dataDir, configFile, env, cmd);
        return Bind(config);
    }

    private static IConfigurationRoot Build(string binaryDirectory, string? dataDir, string? configFile,
        Dictionary<string, string?> env, Dictionary<string, string?> cmd)
    {
        var builder = new ConfigurationBuilder();
        var files = new List<string> { Path.GetFullPath(Path.Combine(binaryDirectory, AppSettingsFile)) };
        if (dataDir is not null)
            files.Add(Path.GetFullPath(Path.Combine(dataDir, AppSettingsFile)));
        if (configFile is not null)
            files.Add(Path.GetFullPath(configFile));
        foreach (var file in files.Distinct())
            builder.AddJsonFile(file, optional: true, reloadOnChange: false);
        builder.AddInMemoryCollection(env).AddInMemoryCollection(cmd);
        IConfigurationRoot root;
        try
        {
            root = builder.Build();
        }
        catch (InvalidDataException e)
        {
            var why = e.GetBaseException().Message;
            throw new NodeConfigurationException($"{e.Message.TrimEnd('.')}: {OneLine(why)}");
        }
        catch (FormatException e)
        {
            throw new NodeConfigurationException(OneLine(e.Message));
        }
        foreach (var child in root.GetSection(Section).GetChildren())
        {
            if (Settings.All(s => !string.Equals(s.Key, child.Key, StringComparison.OrdinalIgnoreCase)))
                throw new NodeConfigurationException($"unknown setting '{Section}:{child.Key}' in a settings file (known: {string.Join(", ", Settings.Select(s => s.Key))})");
        }
        return root;
    }

    private static NodeSettings Bind(IConfigurationRoot config)
    {
        string? Value(string key) => config[$"{Section}:{key}"] is { Length: > 0 } v ? v : null;
        string Named(string key) => $"{Get(key).Flag} (or {Get(key).Environment})";

        string nodeName = Value("NodeName") ?? "node-1";
        if (!NodeNamePattern().IsMatch(nodeName))
            throw new NodeConfigurationException($"{Named("NodeName")} '{nodeName}' is not a host name (letters, digits, '.', '_', '-'; at most 63)");
        string clusterName = Value("ClusterName") ?? "tern";
        if (!ClusterNamePattern().IsMatch(clusterName))
            throw new NodeConfigurationException($"{Named("ClusterName")} '{clusterName}' is not a cluster name (letters, digits, '-', '_'; starting with a letter or digit)");
        string hostname = Host("Hostname", Value("Hostname") ?? "127.0.0.1");
        string? publicHostname = Value("PublicHostname") is { } ph ? Host("PublicHostname", ph) : null;
        string httpHost = Host("HttpHost", Value("HttpHost") ?? "127.0.0.1");
        int port = Port("Port", Value("Port") ?? "4053");
        int httpPort = Port("HttpPort", Value("HttpPort") ?? "8080");
        var seeds = SeedList(config);
        foreach (var seed in seeds)
        {
            if (!SeedPattern().IsMatch(seed) || !int.TryParse(SeedPattern().Match(seed).Groups["port"].Value, CultureInfo.InvariantCulture, out int sp) || sp is < 1 or > 65535
                || Uri.CheckHostName(SeedPattern().Match(seed).Groups["host"].Value) == UriHostNameType.Unknown)
                throw new NodeConfigurationException($"{Named("Seeds")} '{seed}' is not a seed (host:port or akka.tcp://CLUSTER@host:port)");
        }
        var joinTimeout = Duration("JoinTimeout", Value("JoinTimeout") ?? "60s");
        TimeSpan? downAfter = Value("DownAfter") is { } da ? Duration("DownAfter", da) : null;
        string memoryText = Value("Memory") ?? "2G";
        if (!TryParseSize(memoryText, out ulong memory) || memory == 0)
            throw new NodeConfigurationException($"{Named("Memory")} '{memoryText}' is not a size (e.g. 512M, 2G)");
        var persistence = (Value("Persistence") ?? "sqlite").ToLowerInvariant() switch
        {
            "sqlite" => PersistenceKind.Sqlite,
            "postgres" or "postgresql" => PersistenceKind.Postgres,
            var other => throw new NodeConfigurationException($"{Named("Persistence")} '{other}' is not sqlite or postgres"),
        };
        string? connection = Value("Journal");
        if (persistence == PersistenceKind.Postgres)
        {
            connection = Value("PostgresConnection")
                ?? throw new NodeConfigurationException($"postgres persistence needs {Named("PostgresConnection")}");
            if (Tern.Cluster.Hosting.TernPersistence.CheckPostgresConnectionString(connection) is { } problem)
                throw new NodeConfigurationException($"{Named("PostgresConnection")}: {problem}");
        }
        bool faultInjection = (Value("FaultInjection") ?? "off").ToLowerInvariant() switch
        {
            "on" or "true" or "1" or "yes" => true,
            "off" or "false" or "0" or "no" => false,
            var other => throw new NodeConfigurationException($"{Named("FaultInjection")} '{other}' is not on or off"),
        };
        string dataDir = Value("DataDir") ?? Path.Combine("data", nodeName);
        return new NodeSettings
        {
            Cluster = new TernNodeOptions
            {
                NodeName = nodeName,
                SystemName = clusterName,
                DataDir = dataDir,
                Hostname = hostname,
                PublicHostname = publicHostname,
                Port = port,
                Seeds = seeds,
                JoinTimeout = joinTimeout,
                DownAfter = downAfter,
                MemoryBudgetBytes = memory,
                Persistence = persistence,
                JournalConnectionString = connection,
                FaultInjection = faultInjection,
            },
            HttpHost = httpHost,
            HttpPort = httpPort,
            ApiToken = Value("ApiToken"),
        };
    }

    // The seed list of the most important source that has one: a comma-separated string
    // (environment, flags, JSON) or a JSON array.
    private static List<string> SeedList(IConfigurationRoot config)
    {
        string key = $"{Section}:Seeds";
        foreach (var provider in config.Providers.Reverse())
        {
            if (provider.TryGet(key, out string? text) && !string.IsNullOrEmpty(text))
                return [.. text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];
            var items = provider.GetChildKeys([], key).Distinct()
                .OrderBy(k => int.TryParse(k, CultureInfo.InvariantCulture, out int i) ? i : int.MaxValue)
                .Select(k => provider.TryGet($"{key}:{k}", out string? v) ? v?.Trim() : null)
                .OfType<string>().Where(v => v.Length > 0).ToList();
            if (items.Count > 0)
                return items;
        }
        return [];
    }

    private static string Host(string key, string value) =>
        Uri.CheckHostName(value) != UriHostNameType.Unknown ? value
            : throw new NodeConfigurationException($"{Get(key).Flag} (or {Get(key).Environment}) '{value}' is not a host name or address");

    private static int Port(string key, string value) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int port) && port <= 65535 ? port
            : throw new NodeConfigurationException($"{Get(key).Flag} (or {Get(key).Environment}) '{value}' is not a port (0-65535)");

    /// <summary>Parses a duration: 500ms, 30s, 2m, 1h, or a bare number of seconds.</summary>
    public static bool TryParseDuration(string text, out TimeSpan duration)
    {
        ArgumentNullException.ThrowIfNull(text);
        duration = default;
        var m = DurationPattern().Match(text.Trim());
        if (!m.Success || !double.TryParse(m.Groups["n"].Value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double n))
            return false;
        double ms = n * m.Groups["unit"].Value switch { "ms" => 1, "m" => 60_000, "h" => 3_600_000, _ => 1000 };
        if (ms is <= 0 or > 86_400_000)
            return false;
        duration = TimeSpan.FromMilliseconds(ms);
        return true;
    }

    private static TimeSpan Duration(string key, string value) =>
        TryParseDuration(value, out var d) ? d
            : throw new NodeConfigurationException($"{Get(key).Flag} (or {Get(key).Environment}) '{value}' is not a duration above zero (e.g. 500ms, 30s, 2m)");

    // Sizes as `tern run --mem` takes them: K, M, G or T (binary units); a bare number is MiB.
    private static bool TryParseSize(string text, out ulong bytes)
    {
        bytes = 0;
        var m = SizePattern().Match(text.Trim());
        if (!m.Success || !ulong.TryParse(m.Groups["n"].Value, NumberStyles.None, CultureInfo.InvariantCulture, out ulong n))
            return false;
        int shift = m.Groups["unit"].Value.ToUpperInvariant() switch { "K" => 10, "G" => 30, "T" => 40, _ => 20 };
        if (n > ulong.MaxValue >> shift)
            return false;
        bytes = n << shift;
        return true;
    }

    private static string OneLine(string text) => string.Join(' ', text.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")]
    private static partial Regex NodeNamePattern();

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")]
    private static partial Regex ClusterNamePattern();

    [GeneratedRegex(@"^(akka(\.trttl)?\.tcp://[A-Za-z0-9][A-Za-z0-9_-]*@)?(?<host>[^:/@\s]+):(?<port>[0-9]{1,5})$")]
    private static partial Regex SeedPattern();

    [GeneratedRegex(@"^(?<n>[0-9]+(\.[0-9]+)?)(?<unit>ms|s|m|h)?$")]
    private static partial Regex DurationPattern();

    [GeneratedRegex(@"^(?<n>[0-9]+)(?<unit>[KMGTkmgt])?$")]
    private static partial Regex SizePattern();
}
