// Who is writing: the LV and the generation (incarnation) of the VM that owns it. The id rides
// along with the data writes of an LV through an AsyncLocal, so the PV I/O below the LV (local
// or remote) can be fenced without widening IPhysicalVolumeIo.
namespace Tern.Storage.Remote;

/// <summary>The writer of a data write: an LV and the generation of the VM incarnation writing it.</summary>
/// <param name="LvId">The logical volume's id.</param>
/// <param name="Generation">The writer's generation; a higher one fences every lower one.</param>
public readonly record struct WriterId(Guid LvId, long Generation)
{
    /// <inheritdoc/>
    public override string ToString() => $"generation {Generation} of LV {LvId}";
}

/// <summary>The writer of the I/O running in the current async flow (null for metadata and verbs).</summary>
public static class PvWriter
{
    private static readonly AsyncLocal<WriterId?> Slot = new();

    /// <summary>The writer in force for this async flow, or null.</summary>
    public static WriterId? Current => Slot.Value;

    /// <summary>Makes <paramref name="id"/> the writer until the returned scope is disposed.</summary>
    public static IDisposable Use(WriterId id)
    {
        var previous = Slot.Value;
        Slot.Value = id;
        return new Scope(previous);
    }

    private sealed class Scope(WriterId? previous) : IDisposable
    {
        private bool _disposed;

        public void Dispose()
        {
            if (_disposed)
                return;
            _disposed = true;
            Slot.Value = previous;
        }
    }
}
