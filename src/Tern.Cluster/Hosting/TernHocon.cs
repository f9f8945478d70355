// The HOCON a Tern node adds to Akka's defaults: the serializer binding, persistence on
// Akka.Persistence.Sql, and (for in-process tests) tightened cluster timings.
using Akka.Configuration;
using Tern.Cluster.Protocol;
using Tern.Cluster.Serialization;

namespace Tern.Cluster.Hosting;

/// <summary>Builds the HOCON of a node.</summary>
public static class TernHocon
{
    /// <summary>The plugin id of the journal the VM controllers and remember-entities use.</summary>
    public const string JournalPluginId = "akka.persistence.journal.sql";

    /// <summary>The plugin id of the snapshot store.</summary>
    public const string SnapshotPluginId = "akka.persistence.snapshot-store.sql";

    /// <summary>The HOCON for <paramref name="options"/>, to be given precedence over the hosting defaults.</summary>
    public static Config Build(TernNodeOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        string connection = Quote(options.EffectiveJournalConnectionString);
        string provider = Quote(options.JournalProvider);
        string serializerType = $"{typeof(TernMessagePackSerializer).FullName}, {typeof(TernMessagePackSerializer).Assembly.GetName().Name}";
        string wireType = $"{typeof(ITernWireMessage).FullName}, {typeof(ITernWireMessage).Assembly.GetName().Name}";
        string hocon = $$"""
            akka.actor {
              serializers.tern = "{{serializerType}}"
              serialization-bindings { "{{wireType}}" = tern }
              serialization-identifiers { "{{serializerType}}" = {{TernMessagePackSerializer.Id}} }
              serialize-messages = {{(options.SerializeAllMessages ? "on" : "off")}}
            }
            akka.cluster.min-nr-of-members = 1
            akka.persistence {
              journal {
                plugin = "{{JournalPluginId}}"
                sql {
                  connection-string = {{connection}}
                  provider-name = {{provider}}
                  auto-initialize = true
                }
              }
              query.journal.sql {
                connection-string = {{connection}}
                provider-name = {{provider}}
              }
              snapshot-store {
                plugin = "{{SnapshotPluginId}}"
                sql {
                  connection-string = {{connection}}
                  provider-name = {{provider}}
                  auto-initialize = true
                }
              }
            }
            """;
        var config = ConfigurationFactory.ParseString(hocon);
        if (options.FastTimings)
            config = config.WithFallback(ConfigurationFactory.ParseString(FastTimings));
        if (options.DownAfter is { } downAfter)
            config = ConfigurationFactory.ParseString($"akka.cluster.split-brain-resolver.stable-after = {(long)downAfter.TotalMilliseconds}ms").WithFallback(config);
        if (options.FaultInjection)
            config = ConfigurationFactory.ParseString("akka.remote.dot-netty.tcp.applied-adapters = [trttl]").WithFallback(config);
        if (!options.StopOnProcessSignal)
            config = ConfigurationFactory.ParseString("akka.coordinated-shutdown.run-by-clr-shutdown-hook = off").WithFallback(config);
        return config;
    }

    // In-process clusters on loopback: join in well under a second and notice a stopped node quickly.
    private const string FastTimings = """
        akka.cluster {
          seed-node-timeout = 1s
          retry-unsuccessful-join-after = 500ms
          gossip-interval = 200ms
          leader-actions-interval = 200ms
          unreachable-nodes-reaper-interval = 250ms
          periodic-tasks-initial-delay = 50ms
          down-removal-margin = 1s
          split-brain-resolver.stable-after = 5s
          failure-detector.heartbeat-interval = 250ms
          failure-detector.acceptable-heartbeat-pause = 6s
          sharding.retry-interval = 200ms
          sharding.waiting-for-state-timeout = 500ms
          sharding.updating-state-timeout = 1s
          singleton.hand-over-retry-interval = 200ms
          singleton-proxy.singleton-identification-interval = 200ms
        }
        akka.coordinated-shutdown.phases.cluster-exiting.timeout = 2s
        """;

    private static string Quote(string value) =>
        "\"" + value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";
}
