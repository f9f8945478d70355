// The fences of one node's PVs: for each LV, the lowest writer generation still admitted. A
// write by a newer generation raises the fence on its own (the new incarnation's first write
// fences the old one even where the coordinator's explicit raise did not reach). The table is
// a small JSON file replaced atomically (temp file, fsync, rename, fsync of the directory)
// before a raise takes effect, so a fence survives a restart of the node.
//
// A raise also waits for the writes that were admitted under the old fence and are still
// running: once Raise returns, no stale write can land after it.
using System.Text.Json;

namespace Tern.Storage.Remote;

/// <summary>Per-LV writer fences of one node, persisted in a JSON file.</summary>
public sealed class FenceTable
{
    private readonly string _path;
    private static readonly TimeSpan DrainLimit = TimeSpan.FromSeconds(30);

    private readonly object _lock = new();
    private readonly Dictionary<Guid, Entry> _lvs = [];

    private sealed class Entry
    {
        public long Fence;

        // Running writes by generation: a raise waits only for those below the new fence.
        public Dictionary<long, int> InFlight { get; } = [];
    }

    /// <summary>Opens (or starts) the table stored at <paramref name="path"/>.</summary>
    /// <exception cref="StorageException">The file exists but is not a fence table.</exception>
    public FenceTable(string path)
    {
        _path = System.IO.Path.GetFullPath(path);
        if (!File.Exists(_path))
            return;
        Dictionary<string, long>? stored;
        try
        {
            stored = JsonSerializer.Deserialize<Dictionary<string, long>>(File.ReadAllBytes(_path));
        }
        catch (JsonException e)
        {
            throw new StorageException($"{_path} is not a fence table: {e.Message}", e);
        }
        foreach (var (lv, generation) in stored ?? [])
        {
            if (!Guid.TryParse(lv, out var id))
                throw new StorageException($"{_path} is not a fence table: '{lv}' is not an LV id");
            _lvs[id] = new Entry { Fence = generation };
        }
    }

    /// <summary>Where the table is stored.</summary>
    public string Path => _path;

    /// <summary>The fence of <paramref name="lvId"/>: the lowest generation admitted (0 when never fenced).</summary>
    public long Get(Guid lvId)
    {
        lock (_lock)
            return _lvs.TryGetValue(lvId, out var e) ? e.Fence : 0;
    }

    /// <summary>
    /// Raises the fence of <paramref name="lvId"/> to <paramref name="generation"/>, durably, and
    /// waits until no write admitted under the old fence is still running. Returns false (and
    /// changes nothing) when the fence is already at or above it.
    /// </summary>
    public bool Raise(Guid lvId, long generation)
    {
        lock (_lock)
        {
            var e = EntryOf(lvId);
            if (generation <= e.Fence)
                return false;
            RaiseLocked(lvId, e, generation);
            return true;
        }
    }

    /// <summary>Whether a write by <paramref name="w"/> is admitted: its generation is at or above the fence (a higher one raises the fence).</summary>
    public bool Admits(WriterId w)
    {
        lock (_lock)
        {
            var e = EntryOf(w.LvId);
            if (w.Generation < e.Fence)
                return false;
            if (w.Generation > e.Fence)
                RaiseLocked(w.LvId, e, w.Generation);
            return true;
        }
    }

    /// <summary>
    /// Admits a write as <see cref="Admits"/> does and counts it as running until
    /// <see cref="EndWrite"/>, so a raise waits for it. Returns false with the owning generation
    /// when it is refused.
    /// </summary>
    internal bool TryBeginWrite(WriterId w, out long owner)
    {
        lock (_lock)
        {
            var e = EntryOf(w.LvId);
            if (w.Generation < e.Fence)
            {
                owner = e.Fence;
                return false;
            }
            if (w.Generation > e.Fence)
                RaiseLocked(w.LvId, e, w.Generation);
            e.InFlight[w.Generation] = e.InFlight.GetValueOrDefault(w.Generation) + 1;
            owner = e.Fence;
            return true;
        }
    }

    /// <summary>Ends a write begun with <see cref="TryBeginWrite"/>.</summary>
    internal void EndWrite(WriterId w)
    {
        lock (_lock)
        {
            var e = _lvs[w.LvId];
            int left = e.InFlight[w.Generation] - 1;
            if (left > 0)
            {
                e.InFlight[w.Generation] = left;
                return;
            }
            e.InFlight.Remove(w.Generation);
            Monitor.PulseAll(_lock);
        }
    }

    private Entry EntryOf(Guid lvId)
    {
        if (!_lvs.TryGetValue(lvId, out var e))
            _lvs[lvId] = e = new Entry();
        return e;
    }

    // Called under the lock: persists the new fence, then waits for the writes admitted under the
    // old one (they end under the same lock, which Monitor.Wait releases meanwhile).
    private void RaiseLocked(Guid lvId, Entry e, long generation)
    {
        long old = e.Fence;
        e.Fence = generation;
        try
        {
            Save();
        }
        catch
        {
            e.Fence = old;
            throw;
        }
        var deadline = DateTime.UtcNow + DrainLimit;
        while (HasOlder(e, generation))
        {
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero || !Monitor.Wait(_lock, left) && HasOlder(e, generation))
                throw new IOException($"the fence of LV {lvId} is raised to generation {generation}, but writes by an older generation still run after {DrainLimit.TotalSeconds:0} s");
        }
    }

    private static bool HasOlder(Entry e, long generation)
    {
        foreach (var g in e.InFlight.Keys)
        {
            if (g < generation)
                return true;
        }
        return false;
    }

    private void Save()
    {
        var snapshot = new Dictionary<string, long>(_lvs.Count);
        foreach (var (id, e) in _lvs)
        {
            if (e.Fence > 0)
                snapshot[id.ToString()] = e.Fence;
        }
        byte[] json = JsonSerializer.SerializeToUtf8Bytes(snapshot);
        string dir = System.IO.Path.GetDirectoryName(_path)!;
        Directory.CreateDirectory(dir);
        string tmp = _path + ".tmp";
        using (var f = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            f.Write(json);
            f.Flush(flushToDisk: true);
        }
        File.Move(tmp, _path, overwrite: true);
        SyncDirectory(dir);
    }

    // The rename is durable only once the directory is: open it and fsync (Linux allows that).
    private static void SyncDirectory(string dir)
    {
        if (!OperatingSystem.IsLinux())
            return;
        try
        {
            using var handle = File.OpenHandle(dir, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, FileOptions.None);
            RandomAccess.FlushToDisk(handle);
        }
        catch (UnauthorizedAccessException)
        {
            // Some file systems refuse to open a directory; the rename is still atomic.
        }
    }
}
