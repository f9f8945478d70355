// Remote extent I/O under faults, through a real TCP proxy and real files: slow links, dropped
// connections (also in the middle of a frame), a hung server and a killed one. Requests either
// succeed (retried on a new connection within their timeout) or fail with an error naming the
// server; the PV file never holds a torn acknowledged write.
using System.Diagnostics;
using Tern.Storage.Remote;

namespace Tern.Storage.Tests.Remote;

public sealed class RemoteFaultTests : IAsyncLifetime, IDisposable
{
    private const int Block = 64 << 10;
    private const int Blocks = 32;
    private readonly RemoteRig _rig = new();
    private readonly Guid _pv = Guid.NewGuid();
    private ExtentServer _server = null!;
    private TcpFaultProxy _proxy = null!;

    public async Task InitializeAsync()
    {
        using (FilePhysicalVolumeIo.OpenOrCreate(_rig.PathOf("raw.img"), Blocks * Block))
        {
        }
        _server = await _rig.StartServerAsync("node-b", [(_pv, "raw.img")]);
        _proxy = new TcpFaultProxy(_server.Endpoint);
    }

    public void Dispose()
    {
        _proxy.Dispose();
        _rig.Dispose();
    }

    public async Task DisposeAsync()
    {
        await _proxy.DisposeAsync();
        await _rig.DisposeAsync();
    }

    // The connect timeout covers the hello through the proxy and the server (three hops of
    // thread-pool work): 5 s so a loaded machine does not fail the first connection. No test
    // here waits it out: a dead server's proxy closes new connections at once.
    private Task<RemotePhysicalVolumeIo> ConnectAsync(double timeoutSeconds) =>
        _rig.ConnectAsync("node-b", _server, _pv, new RemoteIoOptions { RequestTimeout = TimeSpan.FromSeconds(timeoutSeconds), ConnectTimeout = TimeSpan.FromSeconds(5) }, _proxy.Endpoint);

    [Fact]
    public async Task A_slow_link_below_the_timeout_only_slows_requests_down()
    {
        var io = await ConnectAsync(5);
        _proxy.Delay = TimeSpan.FromMilliseconds(50);
        var data = RemoteRig.Pattern(Block, 1);
        await io.WriteAsync(0, data);
        var back = new byte[Block];
        await io.ReadAsync(0, back);
        Assert.Equal(data, back);
        Assert.Equal(0, io.Reconnects);
    }

    [Fact]
    public async Task A_hung_server_fails_requests_after_the_timeout_with_an_error_naming_it()
    {
        // 2 s: the first write (a cold path) must not time out on a loaded machine; the failure
        // must come after the timeout and well before several of them.
        var io = await ConnectAsync(2);
        await io.WriteAsync(0, new byte[4096]);
        _proxy.Hold = true;
        var clock = Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<IOException>(async () => await io.WriteAsync(0, new byte[4096]));
        Assert.Contains($"extent server on node-b ({_proxy.Endpoint}) did not answer in 2 s", e.Message);
        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(1.9), TimeSpan.FromSeconds(8));
        _proxy.Hold = false;
    }

    [Fact]
    public async Task A_dropped_connection_is_reestablished_and_the_request_retried()
    {
        var io = await ConnectAsync(5);
        await io.WriteAsync(0, RemoteRig.Pattern(Block, 1));
        _proxy.CutAfter(0);
        var data = RemoteRig.Pattern(Block, 2);
        await io.WriteAsync(Block, data);
        Assert.Equal(data, _rig.ReadFile("raw.img", Block, Block));
        Assert.True(io.Reconnects >= 1);
    }

    [Fact]
    public async Task A_connection_cut_in_the_middle_of_a_frame_loses_nothing_and_tears_nothing()
    {
        var io = await ConnectAsync(5);
        _proxy.CutAfter(Block / 2 + 100); // inside the first big write's data
        var data = RemoteRig.Pattern(4 * Block, 3);
        await io.WriteAsync(0, data);
        Assert.Equal(1, _proxy.Cuts);
        Assert.Equal(data, _rig.ReadFile("raw.img", 0, data.Length));
    }

    [Fact]
    public async Task A_connection_cut_in_the_middle_of_read_data_is_retried_and_the_read_completes()
    {
        var io = await ConnectAsync(5);
        var data = RemoteRig.Pattern(2 << 20, 4);
        await io.WriteAsync(0, data);
        _proxy.CutReplyAfter(100 << 10); // inside the first answer's data
        var back = new byte[data.Length];
        await io.ReadAsync(0, back).AsTask().WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(1, _proxy.Cuts);
        Assert.True(io.Reconnects >= 1);
        Assert.Equal(data, back);
    }

    [Fact]
    public async Task Under_repeated_cuts_every_acknowledged_write_is_whole_and_later_ones_old_or_new()
    {
        var io = await ConnectAsync(2);
        // The model: per block, the last acknowledged version and the versions tried after it
        // (a write that failed may or may not have landed, but only whole).
        var acked = new int[Blocks];
        var tried = Enumerable.Range(0, Blocks).Select(_ => new List<int>()).ToArray();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(8));
        var chaos = Task.Run(async () =>
        {
            var random = new Random(7);
            for (int i = 0; i < 40 && !stop.IsCancellationRequested; i++)
            {
                await Task.Delay(random.Next(5, 40));
                _proxy.CutAfter(random.Next(0, 3 * Block));
            }
        });
        int failures = 0, version = 0;
        var workers = Enumerable.Range(0, 4).Select(w => Task.Run(async () =>
        {
            // Each worker owns blocks w, w+4, …, so writes to one block never race.
            for (int round = 0; round < 25 && !stop.IsCancellationRequested; round++)
            {
                for (int b = w; b < Blocks; b += 4)
                {
                    int v = Interlocked.Increment(ref version);
                    try
                    {
                        await io.WriteAsync((long)b * Block, RemoteRig.Pattern(Block, v));
                        acked[b] = v;
                        tried[b].Clear();
                    }
                    catch (IOException)
                    {
                        Interlocked.Increment(ref failures);
                        tried[b].Add(v);
                    }
                }
            }
        })).ToArray();
        await Task.WhenAll(workers);
        await stop.CancelAsync();
        await chaos;
        _proxy.CutAfter(-1);
        await io.FlushAsync();
        Assert.True(_proxy.Cuts >= 5, $"only {_proxy.Cuts} cuts happened");
        Assert.True(io.Reconnects >= 5);
        for (int b = 0; b < Blocks; b++)
        {
            var onDisk = _rig.ReadFile("raw.img", (long)b * Block, Block);
            var candidates = tried[b].Prepend(acked[b]).ToList();
            Assert.True(candidates.Any(v => v == 0 ? onDisk.All(x => x == 0) : onDisk.AsSpan().SequenceEqual(RemoteRig.Pattern(Block, v))),
                $"block {b} holds neither its acknowledged version {acked[b]} nor a whole later one ({string.Join(",", tried[b])})");
        }
    }

    [Fact]
    public async Task A_killed_server_fails_requests_clearly_and_a_restarted_one_serves_the_retry()
    {
        // 2.5 s: long enough for the first write, and for the retry below to reconnect (backoff
        // up to 500 ms) once the server is back, on a loaded machine.
        var io = await ConnectAsync(2.5);
        var first = RemoteRig.Pattern(Block, 1);
        await io.WriteAsync(0, first);
        int port = _server.Endpoint.Port;
        string token = _server.Token;
        await _server.DisposeAsync();

        var clock = Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<IOException>(async () => await io.WriteAsync(Block, RemoteRig.Pattern(Block, 2)));
        Assert.Contains($"extent server on node-b ({_proxy.Endpoint}) did not answer in 2500 ms", e.Message);
        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(2.4), TimeSpan.FromSeconds(10));

        // A write issued while the server is down succeeds once it is back within the timeout.
        var pending = io.WriteAsync(2 * Block, RemoteRig.Pattern(Block, 3)).AsTask();
        await Task.Delay(300);
        Assert.False(pending.IsCompleted);
        _server = await _rig.StartServerAsync("node-b", [(_pv, "raw.img")], port, token);
        _proxy.Target = _server.Endpoint;
        await pending;
        Assert.Equal(first, _rig.ReadFile("raw.img", 0, Block));
        Assert.Equal(RemoteRig.Pattern(Block, 3), _rig.ReadFile("raw.img", 2 * Block, Block));
    }

    [Fact]
    public async Task A_cancelled_request_that_was_not_sent_is_withdrawn()
    {
        var io = await ConnectAsync(5);
        _proxy.Hold = true;
        // Fill the window so later requests stay queued.
        var big = Enumerable.Range(0, 20).Select(i => io.WriteAsync((long)(i % Blocks) * Block, new byte[ExtentProtocol.MaxPiece]).AsTask()).ToList();
        using var cts = new CancellationTokenSource();
        var queued = io.WriteAsync(0, new byte[4096], cts.Token).AsTask();
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => queued);
        _proxy.Hold = false;
        await Task.WhenAll(big);
    }
}
