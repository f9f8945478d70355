// A local PV's I/O behind the node's fence table: the same rule the extent server applies to
// remote writes, so a writer on the PV's own node is fenced exactly like one elsewhere.
namespace Tern.Storage.Remote;

/// <summary>Wraps a local PV's I/O so that writes and flushes by a stale <see cref="PvWriter"/> are refused.</summary>
public sealed class FencedPhysicalVolumeIo(IPhysicalVolumeIo inner, FenceTable fences) : IPhysicalVolumeIo, ISynchronousReads
{
    private long _refused;

    /// <inheritdoc/>
    public string Name => inner.Name;

    /// <inheritdoc/>
    public long Length => inner.Length;

    /// <summary>Writes and flushes refused by the fence so far.</summary>
    public long RefusedStaleWrites => Interlocked.Read(ref _refused);

    /// <inheritdoc/>
    public ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        inner.ReadAsync(offset, buffer, cancellationToken);

    // Reads are not fenced: a local file's reads stay on the calling thread through the fence.
    bool ISynchronousReads.CanReadSynchronously => inner is ISynchronousReads { CanReadSynchronously: true };

    void ISynchronousReads.Read(long offset, Span<byte> span) => ((ISynchronousReads)inner).Read(offset, span);

    /// <inheritdoc/>
    public async ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default)
    {
        if (PvWriter.Current is not { } w)
        {
            await inner.WriteAsync(offset, data, cancellationToken).ConfigureAwait(false);
            return;
        }
        if (!fences.TryBeginWrite(w, out long owner))
        {
            Interlocked.Increment(ref _refused);
            throw new FencedWriteException(w, owner, Name);
        }
        try
        {
            await inner.WriteAsync(offset, data, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            fences.EndWrite(w);
        }
    }

    /// <inheritdoc/>
    public ValueTask FlushAsync(CancellationToken cancellationToken = default)
    {
        if (PvWriter.Current is { } w && !fences.Admits(w))
        {
            Interlocked.Increment(ref _refused);
            throw new FencedWriteException(w, fences.Get(w.LvId), Name);
        }
        return inner.FlushAsync(cancellationToken);
    }

    /// <inheritdoc/>
    public void Dispose() => inner.Dispose();
}
