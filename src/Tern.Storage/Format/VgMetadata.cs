// The volume-group metadata that every PV of a VG carries a copy of: the PVs, the LVs and
// their segments. Serialized as compact UTF-8 JSON (source-generated, no reflection) inside a
// checksummed, sequence-numbered metadata slot; see MetadataSlot and docs/storage-format.md.
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Tern.Storage.Format;

/// <summary>How a segment maps its logical extents onto its areas.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<SegmentType>))]
public enum SegmentType
{
    /// <summary>One area; logical extent i is physical extent Start + i.</summary>
    Linear,

    /// <summary>N areas; the segment's bytes are dealt round-robin in stripe-size units.</summary>
    Striped,

    /// <summary>N areas, each a full copy of the segment.</summary>
    Mirror,
}

/// <summary>A run of physical extents on one PV.</summary>
public sealed record AreaEntry
{
    /// <summary>The PV holding the run.</summary>
    public required Guid Pv { get; init; }

    /// <summary>First physical extent of the run.</summary>
    public required long StartExtent { get; init; }

    /// <summary>
    /// A mirror leg still being synchronised: written like the others but never read, until a
    /// resync has copied it and cleared the flag.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public bool Stale { get; init; }

    /// <summary>
    /// The write-intent record of a mirror leg: regions (of <see cref="VgMetadata.RegionSize"/>
    /// bytes from the area's start) written while this leg could not be, so it must not serve
    /// reads there until a resync has copied them.
    /// </summary>
    public IReadOnlyList<long>? DirtyRegions { get; init; }

    /// <summary>
    /// Where a pvmove in progress is copying this area to: written like the area, never read;
    /// when the copy is done a commit replaces the area with it.
    /// </summary>
    public AreaEntry? MoveTo { get; init; }
}

/// <summary>A contiguous range of an LV's logical extents and where they live.</summary>
public sealed record SegmentEntry
{
    /// <summary>First logical extent covered.</summary>
    public required long StartExtent { get; init; }

    /// <summary>Number of logical extents covered.</summary>
    public required long Extents { get; init; }

    /// <summary>Mapping type.</summary>
    public required SegmentType Type { get; init; }

    /// <summary>Stripe unit in bytes (striped segments only).</summary>
    public int StripeSize { get; init; }

    /// <summary>The areas: one (linear), one per stripe, or one per mirror leg.</summary>
    public required IReadOnlyList<AreaEntry> Areas { get; init; }

    /// <summary>Physical extents each area spans.</summary>
    [JsonIgnore]
    public long ExtentsPerArea => Type == SegmentType.Striped ? Extents / Areas.Count : Extents;
}

/// <summary>A logical volume.</summary>
public sealed record LvEntry
{
    /// <summary>Name, unique in the VG.</summary>
    public required string Name { get; init; }

    /// <summary>Identity.</summary>
    public required Guid Id { get; init; }

    /// <summary>Segments in logical order, contiguous from extent 0.</summary>
    public required IReadOnlyList<SegmentEntry> Segments { get; init; }

    /// <summary>Created with block checksums off: blocks are neither checksummed on write nor verified on read.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public bool ChecksumsOff { get; init; }

    /// <summary>Size in extents.</summary>
    [JsonIgnore]
    public long Extents => Segments.Count == 0 ? 0 : Segments[^1].StartExtent + Segments[^1].Extents;
}

/// <summary>A thin pool: chunks of a data LV handed out on first write, mapped in a metadata LV.</summary>
public sealed record ThinPoolEntry
{
    /// <summary>Pool name (shares the LV namespace).</summary>
    public required string Name { get; init; }

    /// <summary>Identity.</summary>
    public required Guid Id { get; init; }

    /// <summary>The LV holding the chunks.</summary>
    public required Guid DataLv { get; init; }

    /// <summary>The LV holding the chunk mappings.</summary>
    public required Guid MetaLv { get; init; }

    /// <summary>Chunk size in bytes.</summary>
    public required int ChunkSize { get; init; }

    /// <summary>
    /// For a snapshot store: the LV whose snapshots the pool holds. That LV's own extents are the
    /// pool's base: every device reads a chunk it does not map from the same chunk of this LV.
    /// </summary>
    public Guid? Origin { get; init; }

    /// <summary>For a snapshot store: the device number through which the origin LV itself is written.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public int OriginDevice { get; init; }
}

/// <summary>A thin volume (or a thin snapshot, which is one too) of a pool.</summary>
public sealed record ThinEntry
{
    /// <summary>Name (shares the LV namespace).</summary>
    public required string Name { get; init; }

    /// <summary>Identity.</summary>
    public required Guid Id { get; init; }

    /// <summary>The pool.</summary>
    public required Guid Pool { get; init; }

    /// <summary>Its device number in the pool's mappings.</summary>
    public required int DeviceId { get; init; }

    /// <summary>Virtual size in bytes.</summary>
    public required long Size { get; init; }

    /// <summary>For a snapshot: the volume it was taken of.</summary>
    public string? Origin { get; init; }
}

/// <summary>A PV as its VG records it.</summary>
public sealed record PvEntry
{
    /// <summary>Identity (matches the PV label).</summary>
    public required Guid Id { get; init; }

    /// <summary>The host that owns the PV.</summary>
    public required string Host { get; init; }

    /// <summary>Where the PV was last seen (a hint; PVs are found by identity).</summary>
    public required string Path { get; init; }

    /// <summary>Number of physical extents in its data area.</summary>
    public required long Extents { get; init; }
}

/// <summary>One version of a volume group's metadata.</summary>
public sealed record VgMetadata
{
    /// <summary>VG name.</summary>
    public required string Name { get; init; }

    /// <summary>Identity.</summary>
    public required Guid Id { get; init; }

    /// <summary>Sequence number: each committed change is one higher.</summary>
    public required long Seqno { get; init; }

    /// <summary>Physical extent size in bytes.</summary>
    public required long ExtentSize { get; init; }

    /// <summary>Member PVs.</summary>
    public required IReadOnlyList<PvEntry> Pvs { get; init; }

    /// <summary>Logical volumes.</summary>
    public required IReadOnlyList<LvEntry> Lvs { get; init; }

    /// <summary>Size of a write-intent region of a mirror leg: 2 MiB, as LVM's default mirror region.</summary>
    public const long RegionSize = 2L << 20;

    /// <summary>Thin pools.</summary>
    public IReadOnlyList<ThinPoolEntry>? ThinPools { get; init; }

    /// <summary>Thin volumes and snapshots.</summary>
    public IReadOnlyList<ThinEntry>? Thins { get; init; }

    /// <summary>Finds an LV by name.</summary>
    public LvEntry? FindLv(string name) => Lvs.FirstOrDefault(l => l.Name == name);

    /// <summary>Finds a thin pool by name.</summary>
    public ThinPoolEntry? FindPool(string name) => ThinPools?.FirstOrDefault(p => p.Name == name);

    /// <summary>Finds a thin volume by name.</summary>
    public ThinEntry? FindThin(string name) => Thins?.FirstOrDefault(t => t.Name == name);

    /// <summary>The snapshot store of an LV, if it has one.</summary>
    public ThinPoolEntry? FindStore(Guid origin) => ThinPools?.FirstOrDefault(p => p.Origin == origin);

    /// <summary>Whether a name is used by an LV, a thin pool or a thin volume.</summary>
    public bool NameTaken(string name) => FindLv(name) is not null || FindPool(name) is not null || FindThin(name) is not null;
}

/// <summary>What a PV's metadata slot holds: the VG it belongs to, or none (an orphan PV).</summary>
public sealed record PvMetadataDocument
{
    /// <summary>The VG metadata, or null when the PV belongs to no VG.</summary>
    public VgMetadata? Vg { get; init; }
}

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(PvMetadataDocument))]
internal sealed partial class MetadataJsonContext : JsonSerializerContext;
