// Routes VM messages to their controller's shard by a stable hash of the VM name.
using Akka.Cluster.Sharding;
using Tern.Cluster.Protocol;

namespace Tern.Cluster.Actors;

/// <summary>Shards VM controllers by VM name (MurmurHash, stable across processes).</summary>
public sealed class VmMessageExtractor(int shards) : HashCodeMessageExtractor(shards)
{
    /// <inheritdoc/>
    public override string? EntityId(object message) => (message as IWithVmId)?.VmId;
}
