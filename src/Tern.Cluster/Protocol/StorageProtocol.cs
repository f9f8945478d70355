// Between the storage coordinator (a cluster singleton, the only writer of VG metadata), the
// extent server actor of every node (which owns the node's PV files) and the storage agent of
// every node (which opens guest disks). Metadata travels as the JSON the PVs hold.
using MessagePack;

namespace Tern.Cluster.Protocol;

/// <summary>One PV an extent server serves.</summary>
[MessagePackObject]
public sealed record PvInfo(
    [property: Key(0)] Guid Id,
    [property: Key(1)] string Host,
    [property: Key(2)] string Path,
    [property: Key(3)] long Size);

/// <summary>Asks a node's extent server where it listens and which PVs it serves.</summary>
[MessagePackObject]
public sealed record GetExtentServer : ITernWireMessage;

/// <summary>A node's extent server: its host name, Akka address, TCP endpoint (ip:port), access token and PVs.</summary>
[MessagePackObject]
public sealed record ExtentServerInfo(
    [property: Key(0)] string Host,
    [property: Key(1)] string Address,
    [property: Key(2)] string Endpoint,
    [property: Key(3)] string Token,
    [property: Key(4)] IReadOnlyList<PvInfo> Pvs) : ITernWireMessage;

/// <summary>Asks an extent server to label a file of its node as a new PV (creating it with <see cref="Size"/> bytes when missing).</summary>
[MessagePackObject]
public sealed record CreatePhysicalVolume(
    [property: Key(0)] string Path,
    [property: Key(1)] long Size) : ITernWireMessage;

/// <summary>The PV was created and is served.</summary>
[MessagePackObject]
public sealed record PhysicalVolumeCreated(
    [property: Key(0)] PvInfo Pv) : ITernWireMessage;

/// <summary>Asks an extent server to stop serving an orphan PV and drop it from its node's list (its label is already wiped).</summary>
[MessagePackObject]
public sealed record ForgetPhysicalVolume(
    [property: Key(0)] Guid PvId) : ITernWireMessage;

/// <summary>The PV is no longer served or listed.</summary>
[MessagePackObject]
public sealed record PhysicalVolumeForgotten(
    [property: Key(0)] Guid PvId) : ITernWireMessage;

/// <summary>A storage request refused, with a one-line reason for the user.</summary>
[MessagePackObject]
public sealed record StorageRefused(
    [property: Key(0)] string Reason) : ITernWireMessage;

/// <summary>Raises an LV's write fence on an extent server to <see cref="Generation"/>: older writers are refused from then on.</summary>
[MessagePackObject]
public sealed record FenceLv(
    [property: Key(0)] Guid LvId,
    [property: Key(1)] long Generation) : ITernWireMessage;

/// <summary>The extent server on <see cref="Host"/> fences the LV at <see cref="Generation"/> (or a newer one).</summary>
[MessagePackObject]
public sealed record LvFenced(
    [property: Key(0)] Guid LvId,
    [property: Key(1)] long Generation,
    [property: Key(2)] string Host) : ITernWireMessage;

/// <summary>
/// Runs one `tern pv|vg|lv|pvmove` verb on the cluster's pool (the coordinator runs verbs one at a
/// time). Without <see cref="RequestId"/> the answer is the <see cref="StorageVerbResult"/> when the
/// verb is done. With one, the coordinator answers <see cref="StorageVerbAccepted"/> at once (also to
/// a repeat of the same id, which is not run twice) and the result is fetched with
/// <see cref="AwaitStorageVerb"/>, so a caller learns within seconds whether a coordinator took it.
/// </summary>
[MessagePackObject]
public sealed record RunStorageVerb(
    [property: Key(0)] IReadOnlyList<string> Args,
    [property: Key(1)] string? TraceParent,
    [property: Key(2)] string? RequestId = null) : ITernWireMessage;

/// <summary>The coordinator on <see cref="Host"/> took request <see cref="RequestId"/>; <see cref="Ahead"/> verbs run before it.</summary>
[MessagePackObject]
public sealed record StorageVerbAccepted(
    [property: Key(0)] string RequestId,
    [property: Key(1)] string Host,
    [property: Key(2)] int Ahead) : ITernWireMessage;

/// <summary>
/// Asks for the result of request <see cref="RequestId"/>: answered with the
/// <see cref="StorageVerbResult"/> as soon as the verb is done, with <see cref="StorageVerbPending"/>
/// after a few seconds while it is not, or with <see cref="StorageVerbUnknown"/> by a coordinator
/// that never took it (one that started after the one that did died).
/// </summary>
[MessagePackObject]
public sealed record AwaitStorageVerb(
    [property: Key(0)] string RequestId) : ITernWireMessage;

/// <summary>Request <see cref="RequestId"/> is queued (<see cref="Running"/> false) or running on the coordinator on <see cref="Host"/>.</summary>
[MessagePackObject]
public sealed record StorageVerbPending(
    [property: Key(0)] string RequestId,
    [property: Key(1)] string Host,
    [property: Key(2)] bool Running) : ITernWireMessage;

/// <summary>The coordinator on <see cref="Host"/> has no record of request <see cref="RequestId"/>.</summary>
[MessagePackObject]
public sealed record StorageVerbUnknown(
    [property: Key(0)] string RequestId,
    [property: Key(1)] string Host) : ITernWireMessage;

/// <summary>What the verb printed and its exit code (0 done, 1 I/O failure, 2 refused).</summary>
[MessagePackObject]
public sealed record StorageVerbResult(
    [property: Key(0)] int ExitCode,
    [property: Key(1)] string Stdout,
    [property: Key(2)] string Stderr) : ITernWireMessage;

/// <summary>A view's proposed successor of VG metadata version <see cref="BaseSeqno"/>.</summary>
[MessagePackObject]
public sealed record ProposeVgMetadata(
    [property: Key(0)] string Vg,
    [property: Key(1)] long BaseSeqno,
    [property: Key(2)] byte[] MetadataJson) : ITernWireMessage;

/// <summary>The proposal is committed (durable on the VG's PVs); the committed version.</summary>
[MessagePackObject]
public sealed record VgMetadataCommitted(
    [property: Key(0)] string Vg,
    [property: Key(1)] byte[] MetadataJson) : ITernWireMessage;

/// <summary>The proposal was built on an older version; the newest one.</summary>
[MessagePackObject]
public sealed record VgMetadataConflict(
    [property: Key(0)] string Vg,
    [property: Key(1)] byte[] NewerJson) : ITernWireMessage;

/// <summary>Published on the <c>tern-storage</c> topic after every commit.</summary>
[MessagePackObject]
public sealed record VgMetadataChanged(
    [property: Key(0)] string Vg,
    [property: Key(1)] byte[] MetadataJson) : ITernWireMessage;

/// <summary>
/// Asks for an LV as generation <see cref="Generation"/> of VM <see cref="VmId"/>'s disk on
/// <see cref="Host"/>: the LV is fenced at that generation on every reachable extent server first.
/// With <see cref="AtCurrentFence"/> (`lv copy` through the API) the fence is not raised: the LV is
/// granted at the generation it is fenced at now, and only while no guest holds it, so any guest
/// that opens it later cuts the copy's writes off.
/// </summary>
[MessagePackObject]
public sealed record OpenLvForGuest(
    [property: Key(0)] string Lv,
    [property: Key(1)] string VmId,
    [property: Key(2)] long Generation,
    [property: Key(3)] string Host,
    [property: Key(4)] bool AtCurrentFence = false) : ITernWireMessage;

/// <summary>The LV (VG/LV) is the guest's: its id, its VG's metadata, the extent servers to reach its PVs through, and (for an open at the current fence) the generation to write as.</summary>
[MessagePackObject]
public sealed record LvGranted(
    [property: Key(0)] string Lv,
    [property: Key(1)] Guid LvId,
    [property: Key(2)] byte[] MetadataJson,
    [property: Key(3)] IReadOnlyList<ExtentServerInfo> Servers,
    [property: Key(4)] long? Generation = null) : ITernWireMessage;

/// <summary>The guest closed its disk (generation <see cref="Generation"/> of VM <see cref="VmId"/>).</summary>
[MessagePackObject]
public sealed record CloseLvForGuest(
    [property: Key(0)] string Lv,
    [property: Key(1)] string VmId,
    [property: Key(2)] long Generation) : ITernWireMessage;

/// <summary>The close is recorded.</summary>
[MessagePackObject]
public sealed record LvClosed(
    [property: Key(0)] string Lv) : ITernWireMessage;

/// <summary>
/// The coordinator's `lv repair` of an LV a guest holds, sent to the storage agent of the guest's
/// node, which rebuilds lost legs through the disk's own view while the guest keeps its I/O;
/// answered with the <see cref="StorageVerbResult"/> the verb prints.
/// </summary>
[MessagePackObject]
public sealed record RepairGuestLv(
    [property: Key(0)] string Lv,
    [property: Key(1)] long MaxBytesPerSecond) : ITernWireMessage;
