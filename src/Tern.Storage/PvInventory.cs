// What a node reports about its physical volumes (a host's storage capacity): the PVs listed
// in its home's pvs.json, each with its VG, size and free bytes, read without taking the
// pool's lock and without opening the PVs for I/O, so reporting never waits for or disturbs
// a storage command.
using Tern.Storage.Format;

namespace Tern.Storage;

/// <summary>One PV as a host reports it.</summary>
/// <param name="Path">The PV's file.</param>
/// <param name="Vg">Its volume group, or null when it is in none.</param>
/// <param name="SizeBytes">Usable bytes: the extents it gives its VG, or its whole data area when in none.</param>
/// <param name="FreeBytes">Bytes in extents no LV uses (all of <paramref name="SizeBytes"/> when in no VG).</param>
public sealed record PvUsage(string Path, string? Vg, long SizeBytes, long FreeBytes);

/// <summary>Reads a node's PV list.</summary>
public static class PvInventory
{
    /// <summary>The PVs of the node whose home is <paramref name="home"/>, and one message per listed PV that could not be read.</summary>
    public static async Task<(IReadOnlyList<PvUsage> Pvs, IReadOnlyList<string> Problems)> ScanAsync(string home, CancellationToken ct = default)
    {
        var pvs = new List<PvUsage>();
        var problems = new List<string>();
        List<string> paths;
        try
        {
            paths = StoragePool.ReadList(home);
        }
        catch (StorageException e)
        {
            return (pvs, [e.Message]);
        }
        foreach (string path in paths)
        {
            try
            {
                using var io = FilePhysicalVolumeIo.Open(path);
                var (label, vg) = await PhysicalVolume.InspectAsync(io, ct).ConfigureAwait(false);
                pvs.Add(Usage(path, label, vg));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or StorageException)
            {
                problems.Add($"{path}: {e.Message}");
            }
        }
        return (pvs, problems);
    }

    private static PvUsage Usage(string path, PvLabel label, VgMetadata? vg)
    {
        if (vg is null || vg.Pvs.FirstOrDefault(e => e.Id == label.Id) is not { } entry)
            return new(path, null, label.DataLength, label.DataLength);
        long free = Allocator.FreeRuns(vg).TryGetValue(label.Id, out var runs) ? runs.Sum(r => r.Count) * vg.ExtentSize : 0;
        return new(path, vg.Name, entry.Extents * vg.ExtentSize, free);
    }
}
