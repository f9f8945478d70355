// A real TCP proxy on loopback between an extent client and its server, for fault tests: it
// can delay traffic, cut every connection (optionally after a number of further client bytes,
// i.e. in the middle of a frame), stop forwarding (a hung server), or refuse new connections.
using System.Net;
using System.Net.Sockets;

namespace Tern.Storage.Tests.Remote;

internal sealed class TcpFaultProxy : IAsyncDisposable, IDisposable
{
    private bool _done;

    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Pair> _pairs = [];
    private readonly Task _accept;
    private long _cutAfter = -1;
    private long _cutReplyAfter = -1;
    private int _cuts;

    public TcpFaultProxy(IPEndPoint target)
    {
        Target = target;
        _listener.Start();
        Endpoint = (IPEndPoint)_listener.LocalEndpoint;
        _accept = Task.Run(AcceptAsync);
    }

    public IPEndPoint Endpoint { get; }

    public IPEndPoint Target { get; set; }

    /// <summary>Added before each chunk is forwarded, both ways.</summary>
    public TimeSpan Delay { get; set; }

    /// <summary>When set, nothing is forwarded (the connections stay open).</summary>
    public bool Hold { get; set; }

    /// <summary>When set, new connections are closed at once.</summary>
    public bool RefuseNew { get; set; }

    /// <summary>Connections cut so far.</summary>
    public int Cuts => Volatile.Read(ref _cuts);

    /// <summary>Cuts every connection after it has forwarded <paramref name="bytes"/> more bytes from the client (0: now).</summary>
    public void CutAfter(long bytes)
    {
        Interlocked.Exchange(ref _cutAfter, bytes);
        if (bytes == 0)
            CutAll();
    }

    /// <summary>Cuts every connection after it has forwarded <paramref name="bytes"/> more bytes from the server.</summary>
    public void CutReplyAfter(long bytes) => Interlocked.Exchange(ref _cutReplyAfter, bytes);

    private void CutAll()
    {
        // Disarm first, so a connection made right after the cut is not cut too.
        Interlocked.Exchange(ref _cutAfter, -1);
        Interlocked.Exchange(ref _cutReplyAfter, -1);
        List<Pair> all;
        lock (_pairs)
        {
            all = [.. _pairs];
            _pairs.Clear();
        }
        foreach (var p in all)
            p.Close();
        Interlocked.Add(ref _cuts, all.Count);
    }

    private sealed class Pair(Socket client, Socket server)
    {
        public Socket Client { get; } = client;

        public Socket Server { get; } = server;

        public void Close()
        {
            foreach (var s in new[] { Client, Server })
            {
                try
                {
                    s.LingerState = new LingerOption(true, 0); // reset, as a dead peer would
                    s.Close();
                }
                catch (ObjectDisposedException)
                {
                }
            }
        }
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptSocketAsync(_stop.Token);
            }
            catch (Exception)
            {
                return;
            }
            if (RefuseNew)
            {
                client.Close();
                continue;
            }
            var server = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await server.ConnectAsync(Target, _stop.Token);
            }
            catch (Exception)
            {
                client.Close();
                server.Dispose();
                continue;
            }
            var pair = new Pair(client, server);
            lock (_pairs)
                _pairs.Add(pair);
            _ = Task.Run(() => PumpAsync(pair, client, server, fromClient: true));
            _ = Task.Run(() => PumpAsync(pair, server, client, fromClient: false));
        }
    }

    private async Task PumpAsync(Pair pair, Socket from, Socket to, bool fromClient)
    {
        var buffer = new byte[64 << 10];
        try
        {
            while (true)
            {
                int n = await from.ReceiveAsync(buffer, SocketFlags.None, _stop.Token);
                if (n == 0)
                    break;
                while (Hold)
                    await Task.Delay(10, _stop.Token);
                if (Delay > TimeSpan.Zero)
                    await Task.Delay(Delay, _stop.Token);
                ref long counter = ref fromClient ? ref _cutAfter : ref _cutReplyAfter;
                long budget = Interlocked.Read(ref counter);
                if (budget >= 0 && n >= budget)
                {
                    // Forward part of the chunk, then cut: the other side sees half a frame.
                    if (budget > 0)
                        await to.SendAsync(buffer.AsMemory(0, (int)budget), SocketFlags.None, _stop.Token);
                    CutAll();
                    return;
                }
                if (budget >= 0)
                    Interlocked.Add(ref counter, -n);
                await to.SendAsync(buffer.AsMemory(0, n), SocketFlags.None, _stop.Token);
            }
        }
        catch (Exception)
        {
            // One side went away: close both.
        }
        lock (_pairs)
            _pairs.Remove(pair);
        pair.Close();
    }

    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    public async ValueTask DisposeAsync()
    {
        if (_done)
            return;
        _done = true;
        await _stop.CancelAsync();
        _listener.Stop();
        CutAll();
        await _accept;
        _stop.Dispose();
    }
}
