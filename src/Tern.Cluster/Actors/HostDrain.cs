// Draining a host: the scheduler stops placing guests on it, then every guest running there
// moves to another host by live migration (the scheduler picks each target), one at a time so
// the drained host's outgoing link and the cluster's spare memory are not oversubscribed.
using Akka.Actor;
using Tern.Cluster.Protocol;

namespace Tern.Cluster.Actors;

/// <summary>The outcome of one guest's move off a draining host.</summary>
public sealed record DrainedGuest(string VmId, MigrationStatus Status);

/// <summary>Drains hosts by live migration.</summary>
public static class HostDrain
{
    // How often a running migration's status is asked for, and how long one may take at most.
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan MigrationLimit = TimeSpan.FromMinutes(10);

    /// <summary>
    /// Marks <paramref name="host"/> draining (or not). Returns the reason when the scheduler does
    /// not know the host, else null.
    /// </summary>
    public static async Task<string?> SetDrainingAsync(IActorRef scheduler, string host, bool draining, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(scheduler);
        return await scheduler.Ask<object>(new SetHostDraining(host, draining), timeout).ConfigureAwait(false) switch
        {
            HostList => null,
            CommandRejected r => r.Reason,
            var other => $"unexpected answer {other.GetType().Name}",
        };
    }

    /// <summary>
    /// Migrates every guest running on <paramref name="host"/> (already marked draining) to the
    /// hosts the scheduler picks, one after the other, telling <paramref name="each"/> as each ends.
    /// </summary>
    public static async Task<IReadOnlyList<DrainedGuest>> MigrateAllAsync(ActorSystem system, IActorRef vms, string host, MigrationSettings settings,
        Func<DrainedGuest, Task>? each, TimeSpan askTimeout, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(each);
        var guests = (await VmDirectory.ListAsync(system, vms, askTimeout).ConfigureAwait(false))
            .Where(v => v.Host == host && v.Phase == VmPhase.Running)
            .Select(v => v.VmId)
            .ToList();
        var results = new List<DrainedGuest>();
        foreach (var vm in guests)
        {
            var status = await MigrateAsync(vms, vm, settings, askTimeout, ct).ConfigureAwait(false);
            var result = new DrainedGuest(vm, status);
            results.Add(result);
            await each(result).ConfigureAwait(false);
        }
        return results;
    }

    private static async Task<MigrationStatus> MigrateAsync(IActorRef vms, string vm, MigrationSettings settings, TimeSpan askTimeout, CancellationToken ct)
    {
        var answer = await vms.Ask<object>(new MigrateVm(vm, null, settings, Telemetry.TernTracing.Capture()), askTimeout, ct).ConfigureAwait(false);
        if (answer is CommandRejected rejected)
            return new MigrationStatus(vm, "refused", null, null, 0, null, null, rejected.Reason);
        var deadline = DateTime.UtcNow + MigrationLimit;
        while (true)
        {
            if (await vms.Ask<object>(new GetMigration(vm), askTimeout, ct).ConfigureAwait(false) is MigrationStatus s && IsFinal(s.Status))
                return s;
            if (DateTime.UtcNow > deadline)
                return new MigrationStatus(vm, "failed", null, null, 0, null, null, $"no outcome within {MigrationLimit.TotalMinutes:0} minutes");
            await Task.Delay(Poll, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Whether a migration status is an outcome (no longer preparing or running).</summary>
    public static bool IsFinal(string status) => status is "completed" or "failed" or "cancelled" or "refused" or "none";
}
