// Every knob of a Tern node, with the reason for its default.
namespace Tern.Cluster;

/// <summary>Configuration of one Tern node (one host of the cluster).</summary>
public sealed record TernNodeOptions
{
    /// <summary>The host's name, unique in the cluster (node-1, node-2, ...).</summary>
    public string NodeName { get; init; } = "node-1";

    /// <summary>The ActorSystem name; every node of one cluster must use the same.</summary>
    public string SystemName { get; init; } = "tern";

    /// <summary>Address remoting binds to and advertises: loopback unless told otherwise, so a dev node is not reachable from the network.</summary>
    public string Hostname { get; init; } = "127.0.0.1";

    /// <summary>
    /// Address other nodes reach this one by (a pod's DNS name in Kubernetes, a service name in
    /// compose), when it differs from <see cref="Hostname"/> (e.g. bound to 0.0.0.0); null: <see cref="Hostname"/>.
    /// </summary>
    public string? PublicHostname { get; init; }

    /// <summary>Remoting port; 0 picks a free one (tests).</summary>
    public int Port { get; init; } = 4053;

    /// <summary>Seed nodes as Akka addresses (akka.tcp://tern@host:port) or host:port; empty makes this node its own seed.</summary>
    public IReadOnlyList<string> Seeds { get; init; } = [];

    /// <summary>Where this node keeps its files.</summary>
    public string DataDir { get; init; } = "data";

    /// <summary>The database behind the journal: SQLite, embedded, by default; PostgreSQL for multi-host deployments.</summary>
    public PersistenceKind Persistence { get; init; } = PersistenceKind.Sqlite;

    /// <summary>
    /// The persistence database's connection string (SQLite or Npgsql form, after <see cref="Persistence"/>).
    /// Nodes of one cluster must share the database: a VM controller moves between nodes with its
    /// journal. Default for SQLite: tern.db in <see cref="DataDir"/>; PostgreSQL has no default.
    /// </summary>
    public string? JournalConnectionString { get; init; }

    /// <summary>The linq2db provider name for <see cref="Persistence"/>.</summary>
    public string JournalProvider => Persistence == PersistenceKind.Postgres ? "PostgreSQL" : "SQLite.MS";

    /// <summary>
    /// How long a node given seeds may take to become an Up member before it gives up and exits.
    /// 60 s: a cold container cluster forms well within it, and a wrong seed is reported within a minute
    /// instead of a node that waits silently for ever.
    /// </summary>
    public TimeSpan JoinTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Memory this host gives guests in total. 2 GiB: room for several small guests on a developer machine.</summary>
    public ulong MemoryBudgetBytes { get; init; } = 2UL << 30;

    /// <summary>Harts this host offers; the host's processor count.</summary>
    public int Harts { get; init; } = Environment.ProcessorCount;

    /// <summary>How often the host agent reports to the scheduler; 1 s keeps placement fresh at negligible cost.</summary>
    public TimeSpan ReportInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>How long a controller waits for a hypervisor's answer before calling a start or stop failed.</summary>
    public TimeSpan GuestTimeout { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// One guest disk operation in this many becomes a span (0: none). 1000 by default: enough to
    /// see disk latencies in a trace viewer, too few to cost anything measurable.
    /// </summary>
    public int GuestIoSampleEvery { get; init; } = Telemetry.HostTelemetry.DefaultGuestIoSampleEvery;

    /// <summary>
    /// How long a host may stay unreachable before the others down it (the split-brain resolver's
    /// stable-after) and its VMs are restarted elsewhere; null keeps the default of 20 s (5 s with
    /// <see cref="FastTimings"/>). Shorter fails over sooner but downs a host that only paused.
    /// </summary>
    public TimeSpan? DownAfter { get; init; }

    /// <summary>
    /// Runs `tern pv|vg|lv|pvmove` verbs on the cluster's pool when this node holds the storage
    /// coordinator (Tern.Cli passes its command tree); null: the coordinator refuses verbs.
    /// </summary>
    public Tern.Storage.StorageVerbRunner? StorageVerbs { get; init; }

    /// <summary>Knobs of the storage coordinator when it runs on this node (discovery interval, remote I/O timeouts).</summary>
    public Storage.StorageCoordinatorOptions StorageCoordinator { get; init; } = new();

    /// <summary>Tune gossip, seed and failure-detection timeouts down (in-process tests on loopback only).</summary>
    public bool FastTimings { get; init; }

    /// <summary>
    /// Leave the cluster by itself on SIGTERM (Akka's CLR shutdown hook): right for a node
    /// process. Off for nodes embedded in a process that handles signals itself (the demo stops
    /// its nodes in order, then deletes their data).
    /// </summary>
    public bool StopOnProcessSignal { get; init; } = true;

    /// <summary>
    /// Test-only network fault injection: remoting runs through Akka's throttler transport adapter
    /// (addresses become akka.trttl.tcp://...), so <see cref="Hosting.NetworkFaults"/> can cut this
    /// node off from named peers (a blackhole both ways) and heal it again. Off by default; every
    /// node of one cluster must use the same setting (the address schemes differ).
    /// </summary>
    public bool FaultInjection { get; init; }

    /// <summary>The scheme of this node's (and its cluster's) Akka addresses: akka.tcp, or akka.trttl.tcp with <see cref="FaultInjection"/>.</summary>
    public string AddressProtocol => FaultInjection ? "akka.trttl.tcp" : "akka.tcp";

    /// <summary>Force every message through serialization, even locally (tests: catches unserializable messages).</summary>
    public bool SerializeAllMessages { get; init; }

    /// <summary>Shards of the VM controllers: about 10× the largest expected node count, fixed for the life of the cluster.</summary>
    public const int VmShards = 30;

    /// <summary>The connection string actually used.</summary>
    public string EffectiveJournalConnectionString =>
        JournalConnectionString ?? (Persistence == PersistenceKind.Postgres
            ? throw new InvalidOperationException("PostgreSQL persistence needs a connection string")
            : $"Data Source={Path.Combine(Path.GetFullPath(DataDir), "tern.db")}");

    /// <summary>The host name this node advertises to the others.</summary>
    public string EffectivePublicHostname => PublicHostname ?? Hostname;

    /// <summary>
    /// Seed addresses in Akka form, in this node's scheme (<see cref="AddressProtocol"/>): a seed
    /// given as akka.tcp://... is rewritten to akka.trttl.tcp://... with fault injection and back.
    /// </summary>
    public IReadOnlyList<string> SeedAddresses(int actualPort) => Seeds.Count == 0
        ? [$"{AddressProtocol}://{SystemName}@{EffectivePublicHostname}:{actualPort}"]
        : Seeds.Select(s => s.IndexOf("://", StringComparison.Ordinal) is int at and >= 0 ? AddressProtocol + s[at..] : $"{AddressProtocol}://{SystemName}@{s}").ToList();
}

/// <summary>The database kinds a node can keep its journal in.</summary>
public enum PersistenceKind
{
    /// <summary>An SQLite file: embedded, no server; every node of a local cluster opens the same file.</summary>
    Sqlite,

    /// <summary>A PostgreSQL server shared by every node (Npgsql connection string).</summary>
    Postgres,
}
