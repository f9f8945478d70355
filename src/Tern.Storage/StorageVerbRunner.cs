// The seam between the `tern pv|vg|lv|pvmove` command tree (Tern.Cli) and the node that runs
// those verbs on the cluster's pool (the storage coordinator in Tern.Cluster), which cannot
// reference the CLI: the CLI hands its command tree to the node as this delegate.
namespace Tern.Storage;

/// <summary>
/// Runs one storage verb (<paramref name="args"/> as after <c>tern</c>, e.g. <c>["lv","list","--json"]</c>)
/// on <paramref name="pool"/>, writing what the command prints to <paramref name="stdout"/> and
/// <paramref name="stderr"/>, and returns its exit code (0 done, 1 I/O failure, 2 refused). The
/// runner must not dispose <paramref name="pool"/>: the caller keeps it open between verbs.
/// </summary>
public delegate Task<int> StorageVerbRunner(StoragePool pool, IReadOnlyList<string> args, TextWriter stdout, TextWriter stderr, CancellationToken ct);
