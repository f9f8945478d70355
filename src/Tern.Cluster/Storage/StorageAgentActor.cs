// The actor face of a node's storage agent, at /user/storage-agent: it subscribes to the
// coordinator's `tern-storage` topic and hands every published VG version to the agent, and
// reminds the coordinator every few seconds of the LVs this node's guests hold (a coordinator
// that just took over knows none), and runs the mirror maintenance of those LVs (resync of legs
// that came back, repair of legs away too long).
using Akka.Actor;
using Akka.Cluster.Tools.PublishSubscribe;
using Akka.Event;
using Tern.Cluster.Protocol;
using Tern.Storage;

namespace Tern.Cluster.Storage;

/// <summary>Feeds a node's <see cref="StorageAgent"/> from the cluster.</summary>
public sealed class StorageAgentActor : ReceiveActor, IWithTimers
{
    /// <summary>Its name under /user.</summary>
    public const string Name = "storage-agent";

    private static readonly TimeSpan ReassertInterval = TimeSpan.FromSeconds(3);

    private readonly StorageAgent _agent;
    private bool _maintaining;

    /// <summary>Creates the actor for <paramref name="agent"/>.</summary>
    public StorageAgentActor(StorageAgent agent)
    {
        _agent = agent;
        var log = Context.GetLogger();
        Receive<SubscribeAck>(_ => { });
        Receive<VgMetadataChanged>(c =>
        {
            var md = VgMetadataJson.Deserialize(c.MetadataJson);
            agent.AdoptAsync(md).ContinueWith(
                t => log.Warning("storage agent: adopting {0} seqno {1} failed: {2}", c.Vg, md.Seqno, t.Exception?.GetBaseException().Message),
                CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        });
        Receive<Reassert>(_ => agent.Reassert(Self));
        Receive<Maintain>(_ =>
        {
            if (_maintaining)
                return;
            _maintaining = true;
            agent.MaintainAsync().PipeTo(Self, success: o => new Maintained(o, null), failure: e => new Maintained([], e));
        });
        Receive<Maintained>(m =>
        {
            _maintaining = false;
            foreach (var o in m.Outcomes)
            {
                if (o.Error is not null)
                    log.Warning("storage agent: {0}", o.Message);
                else
                    log.Info("storage agent: {0}", o.Message);
            }
            if (m.Error is not null)
                log.Warning("storage agent: maintenance failed: {0}", m.Error.GetBaseException().Message);
        });
        // A reminder's answer carries the coordinator's current version: adopting it (ignored when
        // not newer) also catches up a view that missed a published change (a subscription not yet
        // gossiped to the publisher's node, a dropped message).
        Receive<LvGranted>(g =>
        {
            var md = VgMetadataJson.Deserialize(g.MetadataJson);
            agent.AdoptAsync(md).ContinueWith(
                t => log.Warning("storage agent: adopting {0} seqno {1} failed: {2}", md.Name, md.Seqno, t.Exception?.GetBaseException().Message),
                CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        });
        Receive<StorageRefused>(r => log.Warning("storage agent: {0}", r.Reason));
        Receive<RepairGuestLv>(r =>
        {
            log.Info("storage agent: repairing {0} now, at most {1} bytes/s", r.Lv, r.MaxBytesPerSecond);
            var progress = new RepairLog(log, r.Lv);
            agent.RepairNowAsync(r.Lv, r.MaxBytesPerSecond, progress).PipeTo(Sender,
                failure: e => new StorageVerbResult(1, "", $"tern lv repair: {e.GetBaseException().Message}\n"));
        });
    }

    /// <inheritdoc/>
    public ITimerScheduler Timers { get; set; } = null!;

    /// <inheritdoc/>
    protected override void PreStart()
    {
        DistributedPubSub.Get(Context.System).Mediator.Tell(new Subscribe(StorageCoordinator.Topic, Self));
        Timers.StartPeriodicTimer("reassert", Reassert.Instance, ReassertInterval);
        if (_agent.Maintenance is { } m)
            Timers.StartPeriodicTimer("maintain", Maintain.Instance, m.Options.Interval);
    }

    /// <summary>Props for the actor.</summary>
    public static Props Props(StorageAgent agent) => Akka.Actor.Props.Create(() => new StorageAgentActor(agent));

    private sealed class Maintain : INoSerializationVerificationNeeded
    {
        public static readonly Maintain Instance = new();
    }

    private sealed record Maintained(IReadOnlyList<MaintenanceOutcome> Outcomes, Exception? Error) : INoSerializationVerificationNeeded;

    // Logs a repair's copy every quarter of the way, so the node's log shows it advancing.
    private sealed class RepairLog(ILoggingAdapter log, string lv) : IProgress<CopyProgress>
    {
        private int _quarter;

        public void Report(CopyProgress value)
        {
            int quarter = value.Total == 0 ? 4 : (int)(4 * value.Done / value.Total);
            if (quarter <= _quarter)
                return;
            _quarter = quarter;
            log.Info("storage agent: repair of {0}: {1} of {2} copied", lv, Sizes.Format(value.Done), Sizes.Format(value.Total));
        }
    }

    private sealed class Reassert : INoSerializationVerificationNeeded
    {
        public static readonly Reassert Instance = new();
    }
}
