// The composition of a Tern node on Akka.Hosting: remoting, clustering with the split-brain
// resolver, the VM controller shard region, the scheduler singleton, the host agent and the
// hypervisor. Tern.Node's Program.cs and the in-process tests both call AddTernNode.
using Akka.Actor;
using Akka.Cluster.Hosting;
using Akka.Cluster.Hosting.SBR;
using Akka.Cluster.Sharding;
using Akka.Event;
using Akka.Hosting;
using Akka.Remote.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Tern.Cluster.Actors;
using Tern.Cluster.Protocol;
using Tern.Cluster.Storage;
using Tern.Cluster.Telemetry;

namespace Tern.Cluster.Hosting;

/// <summary>Akka.Hosting extensions for a Tern node.</summary>
public static class TernAkkaHosting
{
    /// <summary>Configures <paramref name="builder"/> as Tern node <paramref name="options"/>.</summary>
    public static AkkaConfigurationBuilder AddTernNode(this AkkaConfigurationBuilder builder, TernNodeOptions options)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(options);
        Directory.CreateDirectory(options.DataDir);
        var storage = new NodeStorage(options.NodeName, options.DataDir, StorageBindAddress(options), options.EffectivePublicHostname);
        return builder
            .AddHocon(TernHocon.Build(options), HoconAddMode.Prepend)
            .AddHocon(Akka.Persistence.Sql.SqlPersistence.DefaultConfiguration, HoconAddMode.Append)
            .WithRemoting(options.Hostname, options.Port, options.PublicHostname)
            .WithClustering(new ClusterOptions
            {
                Roles = [.. EventLog.Roles(options.NodeName)],
                SeedNodes = options.Seeds.Count == 0 ? [] : [.. options.SeedAddresses(options.Port)],
                SplitBrainResolver = new KeepMajorityOption(),
            })
            .WithSingleton<SchedulerProxy>(ActorNames.Scheduler, Scheduler.Props(), new ClusterSingletonOptions(), createProxyToo: true)
            .WithSingleton<StorageCoordinatorProxy>(StorageCoordinator.Name, StorageCoordinator.Props(storage, options.StorageVerbs, options.StorageCoordinator), new ClusterSingletonOptions(), createProxyToo: true)
            .WithShardRegion<VmControllerRegion>(
                ActorNames.VmShardType,
                (system, registry) =>
                {
                    var scheduler = registry.Get<SchedulerProxy>();
                    return id => VmController.Props(id, scheduler, options.GuestTimeout);
                },
                new VmMessageExtractor(TernNodeOptions.VmShards),
                new ShardOptions
                {
                    RememberEntities = true,
                    RememberEntitiesStore = RememberEntitiesStore.Eventsourced,
                    StateStoreMode = StateStoreMode.DData,
                    JournalPluginId = TernHocon.JournalPluginId,
                    SnapshotPluginId = TernHocon.SnapshotPluginId,
                })
            .WithActors((system, registry, resolver) =>
            {
                var cluster = Akka.Cluster.Cluster.Get(system);
                var self = cluster.SelfAddress;
                system.ActorOf(EventLog.Props(), ActorNames.Events);
                if (options.FaultInjection)
                    NetworkFaults.Register(system);
                var capacity = new HostCapacity(options.NodeName, self.ToString(), options.MemoryBudgetBytes, options.Harts, 0, 0, Environment.ProcessId);
                var agent = system.ActorOf(HostAgent.Props(capacity, registry.Get<SchedulerProxy>(), options.ReportInterval, options.DataDir), ActorNames.HostAgent);
                registry.Register<HostAgentKey>(agent);
                var disks = StartStorage(system, registry, storage, self.ToString());
                var hypervisor = system.ActorOf(
                    Hypervisor.Props(options.NodeName, options.MemoryBudgetBytes, options.Harts, registry.Get<VmControllerRegion>(), agent, HostTelemetryFor(options, resolver), options.Hostname, disks),
                    ActorNames.Hypervisor);
                registry.Register<HypervisorKey>(hypervisor);
                if (options.Seeds.Count == 0)
                    cluster.Join(self);
            });
    }

    // The node's share of the extent pool: its extent server (serving the PVs listed in its data
    // dir), the actor the coordinator finds it through, and the agent that opens guest disks here
    // (returned as the hypervisor's source of lv:VG/LV disks).
    private static AgentGuestDisks StartStorage(ActorSystem system, IActorRegistry registry, NodeStorage storage, string address)
    {
        foreach (string problem in storage.StartAsync().GetAwaiter().GetResult())
            system.Log.Warning("storage: {0}", problem);
        system.RegisterOnTermination(() => storage.DisposeAsync().AsTask().GetAwaiter().GetResult());
        system.ActorOf(ExtentServerActor.Props(storage, address), ExtentServerActor.Name);
        var agent = new StorageAgent(storage, registry.Get<StorageCoordinatorProxy>(), maintenance: new MirrorMaintenance(MirrorMaintenanceOptions.FromEnvironment()));
        StorageAgent.Register(system, agent);
        system.ActorOf(StorageAgentActor.Props(agent), StorageAgentActor.Name);
        return new AgentGuestDisks(agent, registry.Get<StorageCoordinatorProxy>(), warn: line => system.Log.Warning("{0}", line));
    }

    // The extent server listens where remoting does (loopback by default, every interface for
    // 0.0.0.0 or a host name) and is advertised under the node's public host name, as remoting
    // is; clients need its random token, which only cluster members learn.
    private static System.Net.IPAddress StorageBindAddress(TernNodeOptions options) =>
        System.Net.IPAddress.TryParse(options.Hostname, out var ip) ? ip
            : options.Hostname == "localhost" ? System.Net.IPAddress.Loopback : System.Net.IPAddress.Any;

    // The hypervisor logs through the host's ILoggerFactory (so lines carry trace ids) when there is one.
    private static HostTelemetry HostTelemetryFor(TernNodeOptions options, Akka.DependencyInjection.IDependencyResolver resolver)
    {
        var loggers = resolver.GetService<ILoggerFactory>();
        return new HostTelemetry(loggers?.CreateLogger<Hypervisor>() ?? (ILogger)NullLogger.Instance, options.GuestIoSampleEvery);
    }
}
