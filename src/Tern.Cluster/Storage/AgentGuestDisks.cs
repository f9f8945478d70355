// The hypervisor's guest disks (lv:VG/LV) on a cluster node: opened through the node's storage
// agent (which asks the coordinator, fencing older generations), and sized without opening from
// the coordinator's `lv list` (a migration target needs the size before its generation may open).
using System.Text.Json;
using Akka.Actor;
using Tern.Cluster.Actors;
using Tern.Cluster.Protocol;
using Tern.Machine.Devices;
using Tern.Storage;

namespace Tern.Cluster.Storage;

/// <summary><see cref="IGuestDisks"/> over a node's <see cref="StorageAgent"/>.</summary>
/// <remarks>
/// With <paramref name="warn"/>, each opened disk's I/O errors are told to it (a line naming the
/// VM, its generation and the LV, with the error's causes): what the guest only sees as EIO.
/// </remarks>
public sealed class AgentGuestDisks(StorageAgent agent, IActorRef coordinator, TimeSpan? timeout = null, Action<string>? warn = null) : IGuestDisks
{
    private readonly TimeSpan _timeout = timeout ?? TimeSpan.FromSeconds(15);

    // A guest that keeps retrying a dead disk must not flood the log: the first lines of each
    // disk, and after that only one to say the rest are not logged.
    internal const int LoggedErrorsPerDisk = 20;

    /// <inheritdoc/>
    public async Task<long> SizeAsync(string lv, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(lv);
        string[] name = lv.Split('/');
        object reply;
        try
        {
            reply = await coordinator.Ask<object>(new RunStorageVerb(["lv", "list", "--json"], null), _timeout, ct).ConfigureAwait(false);
        }
        catch (AskTimeoutException e)
        {
            throw new IOException($"the storage coordinator did not answer in {_timeout.TotalSeconds:0} s", e);
        }
        if (reply is not StorageVerbResult { ExitCode: 0 } result)
            throw new IOException(reply is StorageVerbResult failed ? $"lv list failed: {failed.Stderr.Trim()}" : $"the storage coordinator answered {reply.GetType().Name} to lv list");
        using var doc = JsonDocument.Parse(result.Stdout);
        foreach (var row in doc.RootElement.GetProperty("lvs").EnumerateArray())
        {
            if (row.GetProperty("vg").GetString() == name[0] && row.GetProperty("lv").GetString() == name[^1])
                return row.GetProperty("size").GetInt64();
        }
        throw new IOException($"no logical volume {lv} in the cluster's pool");
    }

    /// <inheritdoc/>
    public async Task<IBlockBackend> OpenAsync(string lv, string vmId, long generation, CancellationToken ct)
    {
        try
        {
            var disk = await agent.OpenGuestDiskAsync(lv, vmId, generation, ct).ConfigureAwait(false);
            if (warn is not null)
            {
                int logged = 0;
                disk.ErrorReported = error =>
                {
                    int n = Interlocked.Increment(ref logged);
                    if (n <= LoggedErrorsPerDisk)
                        warn($"disk {lv} of VM {vmId} generation {generation}: I/O error: {error}");
                    else if (n == LoggedErrorsPerDisk + 1)
                        warn($"disk {lv} of VM {vmId} generation {generation}: more I/O errors, not logged");
                };
            }
            return disk;
        }
        catch (StorageException e)
        {
            throw new IOException(e.Message, e);
        }
    }
}
