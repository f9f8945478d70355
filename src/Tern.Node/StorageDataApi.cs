// The data of a cluster LV over the API, for `tern lv copy FILE lv:VG/LV` (and back) against a
// cluster, whose LVs live on other machines than the client's file:
//   GET    /api/storage/lvs/{vg}/{lv}/data?offset=O&length=N   N bytes from O (N at most 4 MiB; 0 for just the size)
//   PUT    /api/storage/lvs/{vg}/{lv}/data?offset=O            writes the body at O and flushes it
//   DELETE /api/storage/lvs/{vg}/{lv}/data                     closes the LV on this node at once
// Every answer carries the LV's size in X-Tern-Lv-Size. All three need the API token (a disk's
// contents are as sensitive as changing it). The node opens the LV through its storage agent
// like a guest's disk (StorageAgent.OpenForCopyAsync): refused while a guest holds it, writes
// fenced at the LV's current generation so a guest that opens it later cuts them off. The open
// LV is kept between requests of one copy and closed when the client says so, or after
// IdleClose without a request.
using Akka.Actor;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Tern.Cluster.Storage;
using Tern.Storage;

namespace Tern.Node;

/// <summary>The LV data routes.</summary>
public static class StorageDataApi
{
    /// <summary>The most bytes one GET or PUT moves: 4 MiB, a few extents' worth per round trip.</summary>
    public const int MaxChunk = 4 << 20;

    /// <summary>The header that carries the LV's size in bytes.</summary>
    public const string SizeHeader = "X-Tern-Lv-Size";

    private static readonly TimeSpan IdleClose = TimeSpan.FromSeconds(10);

    /// <summary>Maps the routes on <paramref name="api"/> (a group guarded by the API token).</summary>
    public static void Map(IEndpointRouteBuilder api)
    {
        ArgumentNullException.ThrowIfNull(api);
        var sessions = new Sessions();
        api.MapGet("/storage/lvs/{vg}/{lv}/data", (string vg, string lv, long? offset, long? length, HttpContext http, ActorSystem system) =>
            WithLvAsync(sessions, system, vg, lv, http, async disk =>
            {
                long at = offset ?? 0;
                long n = length ?? 0;
                if (at < 0 || n < 0 || n > MaxChunk || at > disk.Device.Length - n)
                    return Error($"offset {at} and length {n} are outside {vg}/{lv} ({disk.Device.Length} bytes) or over {MaxChunk} bytes", 400);
                var data = new byte[n];
                await disk.Device.ReadAsync(at, data, http.RequestAborted);
                return Results.Bytes(data, "application/octet-stream");
            }));
        api.MapPut("/storage/lvs/{vg}/{lv}/data", (string vg, string lv, long? offset, HttpContext http, ActorSystem system) =>
            WithLvAsync(sessions, system, vg, lv, http, async disk =>
            {
                long at = offset ?? 0;
                var data = await ReadBodyAsync(http);
                if (data is null)
                    return Error($"a body of at most {MaxChunk} bytes is required", 400);
                if (at < 0 || at > disk.Device.Length - data.Length)
                    return Error($"{data.Length} bytes at offset {at} do not fit in {vg}/{lv} ({disk.Device.Length} bytes)", 400);
                await disk.Device.WriteAsync(at, data, http.RequestAborted);
                await disk.Device.FlushAsync(http.RequestAborted);
                return Results.Json(new { written = data.Length });
            }));
        api.MapDelete("/storage/lvs/{vg}/{lv}/data", async (string vg, string lv) =>
        {
            await sessions.CloseAsync($"{vg}/{lv}");
            return Results.NoContent();
        });
    }

    private static async Task<IResult> WithLvAsync(Sessions sessions, ActorSystem system, string vg, string lv, HttpContext http, Func<GuestDisk, Task<IResult>> action)
    {
        if (StorageAgent.For(system) is not { } agent)
            return Error("this node has no cluster storage", 503);
        Session session;
        try
        {
            session = await sessions.GetAsync(agent, $"{vg}/{lv}", http.RequestAborted);
        }
        catch (StorageException e)
        {
            return Error(e.Message, 409);
        }
        catch (IOException e)
        {
            return Error(e.Message, 503);
        }
        await session.Gate.WaitAsync(http.RequestAborted);
        try
        {
            session.LastUse = DateTime.UtcNow;
            http.Response.Headers[SizeHeader] = session.Disk.Device.Length.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return await action(session.Disk);
        }
        catch (StorageException e)
        {
            return Error(e.Message, 409);
        }
        catch (IOException e)
        {
            return Error(e.Message, 503);
        }
        finally
        {
            session.LastUse = DateTime.UtcNow;
            session.Gate.Release();
        }
    }

    private static async Task<byte[]?> ReadBodyAsync(HttpContext http)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[64 << 10];
        int n;
        while ((n = await http.Request.Body.ReadAsync(chunk, http.RequestAborted)) > 0)
        {
            if (buffer.Length + n > MaxChunk)
                return null;
            buffer.Write(chunk, 0, n);
        }
        return buffer.Length == 0 ? null : buffer.ToArray();
    }

    private static IResult Error(string reason, int status) =>
        Results.Json(new ErrorView(reason, status switch { 400 => "Invalid", 409 => "Refused", _ => "Unavailable" }), statusCode: status);

    private sealed class Session(GuestDisk disk)
    {
        public GuestDisk Disk => disk;

        public SemaphoreSlim Gate { get; } = new(1, 1);

        public DateTime LastUse { get; set; } = DateTime.UtcNow;
    }

    // The LVs open for copies on this node, one per LV; closed on request or when idle.
    private sealed class Sessions
    {
        private readonly Dictionary<string, Task<Session>> _open = [];
        private readonly Lock _lock = new();
        private Timer? _reaper;

        public async Task<Session> GetAsync(StorageAgent agent, string lv, CancellationToken ct)
        {
            Task<Session> opening;
            lock (_lock)
            {
                if (!_open.TryGetValue(lv, out opening!))
                {
                    string holder = $"lv-copy@{agent.Node.Host}";
                    opening = Task.Run(async () => new Session(await agent.OpenForCopyAsync(lv, holder, CancellationToken.None).ConfigureAwait(false)), CancellationToken.None);
                    _open[lv] = opening;
                    _reaper ??= new Timer(_ => Reap(), null, IdleClose, IdleClose);
                }
            }
            try
            {
                return await opening.WaitAsync(ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is StorageException or IOException)
            {
                lock (_lock)
                {
                    if (_open.TryGetValue(lv, out var same) && same == opening)
                        _open.Remove(lv);
                }
                throw;
            }
        }

        public async Task CloseAsync(string lv)
        {
            Task<Session>? opening;
            lock (_lock)
            {
                if (_open.Remove(lv, out opening) is false)
                    return;
            }
            await CloseOneAsync(opening).ConfigureAwait(false);
        }

        private static async Task CloseOneAsync(Task<Session> opening)
        {
            Session session;
            try
            {
                session = await opening.ConfigureAwait(false);
            }
            catch (Exception e) when (e is StorageException or IOException)
            {
                return; // it never opened
            }
            await session.Gate.WaitAsync().ConfigureAwait(false); // a request in progress finishes first
            await session.Disk.DisposeAsync().ConfigureAwait(false);
        }

        private void Reap()
        {
            var idle = new List<Task<Session>>();
            lock (_lock)
            {
                foreach (var (lv, opening) in _open.ToList())
                {
                    if (opening.IsCompletedSuccessfully && DateTime.UtcNow - opening.Result.LastUse > IdleClose && opening.Result.Gate.CurrentCount == 1)
                    {
                        _open.Remove(lv);
                        idle.Add(opening);
                    }
                }
            }
            foreach (var opening in idle)
                _ = CloseOneAsync(opening);
        }
    }
}
