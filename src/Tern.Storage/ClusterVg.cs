// The contracts of a volume group shared by the nodes of a cluster. One coordinator writes the
// metadata to the PVs; every other node holds a view of the VG (same PVs, same LVs) whose
// changes are proposed to the coordinator as compare-and-swap on the sequence number: a
// proposal built on an older version is refused with the newer one, which the view adopts
// before it re-applies its change.
using System.Text.Json;
using Tern.Storage.Format;

namespace Tern.Storage;

/// <summary>Commits the metadata changes of a VG view (see <see cref="VolumeGroup.OpenView"/>).</summary>
public interface IVgCommitter
{
    /// <summary>
    /// Proposes <paramref name="next"/> (whose sequence number is <paramref name="current"/>'s + 1)
    /// as the successor of <paramref name="current"/>. Returns the committed metadata once it is
    /// durable on the VG's PVs, or throws <see cref="MetadataConflictException"/> carrying the newer
    /// version when <paramref name="current"/> is no longer the newest.
    /// </summary>
    Task<VgMetadata> ProposeAsync(VgMetadata current, VgMetadata next, CancellationToken ct);
}

/// <summary>A proposed metadata change was built on an older version than the committed one.</summary>
public sealed class MetadataConflictException : StorageException
{
    /// <summary>Creates the error carrying the newer committed version.</summary>
    public MetadataConflictException(VgMetadata newer)
        : base($"volume group {newer.Name} changed meanwhile (now at seqno {newer.Seqno})") => Newer = newer;

    /// <summary>The newest committed metadata.</summary>
    public VgMetadata Newer { get; }
}

/// <summary>VG metadata as the bytes that travel between nodes (the same JSON the PVs hold).</summary>
public static class VgMetadataJson
{
    /// <summary>Encodes one version.</summary>
    public static byte[] Serialize(VgMetadata md) =>
        JsonSerializer.SerializeToUtf8Bytes(new PvMetadataDocument { Vg = md }, MetadataJsonContext.Default.PvMetadataDocument);

    /// <summary>Decodes one version; throws <see cref="StorageException"/> on bytes that are not one.</summary>
    public static VgMetadata Deserialize(ReadOnlySpan<byte> json)
    {
        try
        {
            return JsonSerializer.Deserialize(json, MetadataJsonContext.Default.PvMetadataDocument)?.Vg
                ?? throw new StorageException("volume group metadata message holds no volume group");
        }
        catch (JsonException e)
        {
            throw new StorageException($"volume group metadata message is damaged: {e.Message}", e);
        }
    }
}
