// Extent servers, PV files and remote clients for the remote-I/O tests: real files in a temp
// directory, real TCP servers on 127.0.0.1, real clients.
using System.Net;
using Tern.Storage.Remote;

namespace Tern.Storage.Tests.Remote;

internal sealed class RemoteRig : IAsyncDisposable, IDisposable
{
    private bool _done;

    private readonly List<IDisposable> _disposables = [];
    private readonly List<IAsyncDisposable> _asyncDisposables = [];

    public string Dir { get; } = Directory.CreateTempSubdirectory("tern-remote-").FullName;

    public string PathOf(string name) => Path.Combine(Dir, name);

    public string FencePath(string node) => PathOf($"{node}-fences.json");

    /// <summary>A labelled PV file owned by <paramref name="host"/>; returns its id.</summary>
    public async Task<Guid> CreatePvFileAsync(string name, string host, long size = 32 << 20)
    {
        using var pv = await PhysicalVolume.CreateAsync(FilePhysicalVolumeIo.OpenOrCreate(PathOf(name), size), host);
        return pv.Id;
    }

    /// <summary>Starts a server for <paramref name="node"/> (its fence file in the rig) serving the given files.</summary>
    public async Task<ExtentServer> StartServerAsync(string node, IEnumerable<(Guid Id, string File)> volumes, int port = 0, string? token = null)
    {
        var server = await ExtentServer.StartAsync(IPAddress.Loopback, port, new FenceTable(FencePath(node)), token);
        _asyncDisposables.Add(server);
        foreach (var (id, file) in volumes)
        {
            var io = FilePhysicalVolumeIo.Open(PathOf(file));
            _disposables.Add(io);
            server.AddVolume(id, io);
        }
        return server;
    }

    public async Task<RemotePhysicalVolumeIo> ConnectAsync(string host, ExtentServer server, Guid pv, RemoteIoOptions? options = null, IPEndPoint? via = null)
    {
        var io = await RemotePhysicalVolumeIo.ConnectAsync(host, via ?? server.Endpoint, server.Token, pv, options);
        _disposables.Add(io);
        return io;
    }

    public T Track<T>(T d) where T : IDisposable
    {
        _disposables.Add(d);
        return d;
    }

    public byte[] ReadFile(string name, long offset, int length)
    {
        using var f = new FileStream(PathOf(name), FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        f.Position = offset;
        var b = new byte[length];
        f.ReadExactly(b);
        return b;
    }

    public static byte[] Pattern(int length, int seed)
    {
        var b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }

    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    public async ValueTask DisposeAsync()
    {
        if (_done)
            return;
        _done = true;
        for (int i = _disposables.Count - 1; i >= 0; i--)
            _disposables[i].Dispose();
        foreach (var d in _asyncDisposables)
            await d.DisposeAsync();
        Directory.Delete(Dir, recursive: true);
    }
}
