// Lists every VM: the persistence ids in the journal name the VMs that ever existed, and
// each one's controller says whether it still does and what state it is in.
using Akka.Actor;
using Akka.Persistence.Query;
using Akka.Persistence.Sql.Query;
using Akka.Streams;
using Akka.Streams.Dsl;
using Tern.Cluster.Protocol;

namespace Tern.Cluster.Actors;

/// <summary>Lists the cluster's VMs.</summary>
public static class VmDirectory
{
    /// <summary>The status of every existing VM, by name.</summary>
    public static async Task<IReadOnlyList<VmStatus>> ListAsync(ActorSystem system, IActorRef vmRegion, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(system);
        var journal = PersistenceQuery.Get(system).ReadJournalFor<SqlReadJournal>(SqlReadJournal.Identifier);
        var ids = await journal.CurrentPersistenceIds().RunWith(Sink.Seq<string>(), system.Materializer());
        var names = ids.Where(id => id.StartsWith(VmController.PersistencePrefix, StringComparison.Ordinal))
            .Select(id => id[VmController.PersistencePrefix.Length..])
            .Order(StringComparer.Ordinal)
            .ToList();
        var answers = await Task.WhenAll(names.Select(n => vmRegion.Ask<object>(new GetVm(n), timeout)));
        return answers.OfType<VmStatus>().ToList();
    }
}
