// The remote extent data path on real sockets and files: what a client writes through an
// ExtentServer lands in the PV file byte for byte, requests pipeline and batch, and bad peers
// (wrong token, unknown PV, hostile bytes) are refused without harming the server.
using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Tern.Storage.Remote;

namespace Tern.Storage.Tests.Remote;

public sealed class RemoteIoTests : IAsyncLifetime, IDisposable
{
    private readonly RemoteRig _rig = new();
    private ExtentServer _server = null!;
    private readonly Guid _pv = Guid.NewGuid();

    public async Task InitializeAsync()
    {
        using (var f = FilePhysicalVolumeIo.OpenOrCreate(_rig.PathOf("raw.img"), 16 << 20))
        {
        }
        _server = await _rig.StartServerAsync("node-a", [(_pv, "raw.img")]);
    }

    public void Dispose()
    {
        _rig.Dispose();
    }

    public async Task DisposeAsync() => await _rig.DisposeAsync();

    [Fact]
    public async Task Writes_through_the_server_land_in_the_file_and_read_back()
    {
        var io = await _rig.ConnectAsync("node-a", _server, _pv);
        Assert.Equal(16 << 20, io.Length);
        Assert.Equal($"node-a:{_pv}", io.Name);
        // Sizes below, at and above a request piece, at unaligned offsets.
        (long Offset, int Length)[] cases = [(0, 1), (4095, 4097), (1 << 20, 512 << 10), (3 << 20, (3 << 20) + 12345), (15 << 20, 1 << 20)];
        foreach (var (offset, length) in cases)
        {
            var data = RemoteRig.Pattern(length, (int)offset);
            await io.WriteAsync(offset, data);
            var back = new byte[length];
            await io.ReadAsync(offset, back);
            Assert.Equal(data, back);
            Assert.Equal(data, _rig.ReadFile("raw.img", offset, length));
        }
        await io.FlushAsync();
        Assert.True(_server.Requests >= 2 * cases.Length);
    }

    [Fact]
    public async Task Reads_past_the_end_read_zeros_and_writes_past_it_fail_without_growing_the_file()
    {
        var io = await _rig.ConnectAsync("node-a", _server, _pv);
        await io.WriteAsync(io.Length - 4096, RemoteRig.Pattern(4096, 1));
        var back = RemoteRig.Pattern(8192, 2);
        await io.ReadAsync(io.Length - 4096, back);
        Assert.Equal(RemoteRig.Pattern(4096, 1), back[..4096]);
        Assert.All(back[4096..], b => Assert.Equal(0, b));

        var e = await Assert.ThrowsAsync<IOException>(async () => await io.WriteAsync(io.Length - 10, new byte[20]));
        Assert.Contains("outside the volume", e.Message);
        Assert.Equal(16 << 20, new FileInfo(_rig.PathOf("raw.img")).Length);
        // The connection survives a refused request.
        await io.WriteAsync(0, new byte[] { 7 });
        Assert.Equal(7, _rig.ReadFile("raw.img", 0, 1)[0]);
    }

    [Fact]
    public async Task Many_concurrent_requests_pipeline_and_each_gets_its_own_answer()
    {
        var io = await _rig.ConnectAsync("node-a", _server, _pv);
        const int n = 256;
        await Task.WhenAll(Enumerable.Range(0, n).Select(i => io.WriteAsync(i * 16384L, RemoteRig.Pattern(16384, i)).AsTask()));
        long before = _server.Requests;
        var buffers = Enumerable.Range(0, n).Select(_ => new byte[16384]).ToArray();
        await Task.WhenAll(Enumerable.Range(0, n).Select(i => io.ReadAsync(i * 16384L, buffers[i]).AsTask()));
        for (int i = 0; i < n; i++)
            Assert.Equal(RemoteRig.Pattern(16384, i), buffers[i]);
        Assert.Equal(before + n, _server.Requests);
    }

    [Fact]
    public async Task A_wrong_token_or_an_unknown_pv_is_refused_with_a_clear_error()
    {
        var wrong = Convert.ToHexStringLower(new byte[32]);
        var e = await Assert.ThrowsAnyAsync<IOException>(() => RemotePhysicalVolumeIo.ConnectAsync("node-a", _server.Endpoint, wrong, _pv));
        Assert.Contains($"extent server on node-a ({_server.Endpoint}) refused physical volume {_pv}: wrong token", e.Message);

        var other = Guid.NewGuid();
        e = await Assert.ThrowsAnyAsync<IOException>(() => RemotePhysicalVolumeIo.ConnectAsync("node-a", _server.Endpoint, _server.Token, other));
        Assert.Contains($"no physical volume {other} is served here", e.Message);

        var bad = await Assert.ThrowsAsync<ArgumentException>(() => RemotePhysicalVolumeIo.ConnectAsync("node-a", _server.Endpoint, "xyz", _pv));
        Assert.Contains("64 hex digits", bad.Message);
        Assert.Equal(2, _server.ProtocolErrors);
    }

    [Fact]
    public async Task A_removed_volume_is_no_longer_served()
    {
        // The refusal comes at once on the reconnect; the timeout only bounds the test should it
        // not (2 s could expire first on a loaded machine, with a different error).
        var io = await _rig.ConnectAsync("node-a", _server, _pv, new RemoteIoOptions { RequestTimeout = TimeSpan.FromSeconds(10) });
        await io.WriteAsync(0, new byte[4096]);
        _server.RemoveVolume(_pv);
        var e = await Assert.ThrowsAsync<IOException>(async () => await io.ReadAsync(0, new byte[4096]));
        Assert.Contains($"no physical volume {_pv} is served here", e.Message);
    }

    public static TheoryData<string, byte[]> HostileInputs()
    {
        var frameTooBig = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(frameTooBig, 64 << 20);
        var unknownOp = new byte[4 + 18];
        BinaryPrimitives.WriteUInt32LittleEndian(unknownOp, 18);
        unknownOp[4] = 9;
        var overrun = new byte[4 + 18 + 10];
        BinaryPrimitives.WriteUInt32LittleEndian(overrun, 28);
        overrun[4] = 2; // a write of 4096 bytes carrying 10
        BinaryPrimitives.WriteUInt32LittleEndian(overrun.AsSpan(4 + 14), 4096);
        var hugePiece = new byte[4 + 18];
        BinaryPrimitives.WriteUInt32LittleEndian(hugePiece, 18);
        hugePiece[4] = 1;
        BinaryPrimitives.WriteUInt32LittleEndian(hugePiece.AsSpan(4 + 14), uint.MaxValue);
        var truncated = new byte[4 + 5];
        BinaryPrimitives.WriteUInt32LittleEndian(truncated, 5);
        return new()
        {
            { "frame of 67108864 bytes", frameTooBig },
            { "unknown opcode 9", unknownOp },
            { "overruns its frame", overrun },
            { "bad request: opcode 1", hugePiece },
            { "truncated request header", truncated },
        };
    }

    [Theory]
    [MemberData(nameof(HostileInputs))]
    public async Task Hostile_frames_close_that_connection_with_a_logged_reason_and_the_server_keeps_serving(string reason, byte[] frames)
    {
        var logged = new List<string>();
        _server.Log = line =>
        {
            lock (logged)
                logged.Add(line);
        };
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(_server.Endpoint);
        var hello = new byte[ExtentProtocol.HelloBytes];
        ExtentProtocol.WriteHello(hello, Convert.FromHexString(_server.Token), _pv, Guid.NewGuid(), 1);
        await socket.SendAsync(hello);
        var reply = new byte[11];
        for (int filled = 0; filled < reply.Length;)
        {
            int n = await socket.ReceiveAsync(reply.AsMemory(filled));
            Assert.True(n > 0, "the server closed the connection after a valid hello");
            filled += n;
        }
        Assert.Equal(ExtentProtocol.HelloOk, reply[0]);
        await socket.SendAsync(frames);
        // The server closes the connection: the read ends (EOF or reset).
        var rest = new byte[64];
        int got;
        try
        {
            got = await socket.ReceiveAsync(rest).WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (SocketException)
        {
            got = 0;
        }
        Assert.Equal(0, got);
        await WaitUntilAsync(() => _server.ProtocolErrors == 1);
        Assert.Contains(reason, _server.LastProtocolError);
        lock (logged)
            Assert.Contains(logged, l => l.Contains(reason));

        var io = await _rig.ConnectAsync("node-a", _server, _pv);
        await io.WriteAsync(8192, new byte[] { 1, 2, 3 });
        Assert.Equal(new byte[] { 1, 2, 3 }, _rig.ReadFile("raw.img", 8192, 3));
    }

    [Fact]
    public async Task A_stranger_that_is_not_a_tern_client_is_refused()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(_server.Endpoint);
        await socket.SendAsync("GET / HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray().Concat(new byte[64]).ToArray());
        await WaitUntilAsync(() => _server.ProtocolErrors == 1);
        Assert.Contains("bad magic", _server.LastProtocolError);
    }

    [Fact]
    public async Task A_refusal_is_counted_only_after_its_reason_and_log_line_are_there()
    {
        // Tests (and operators) wait for the count to grow, then read the reason: the count must come last.
        long countWhenLogged = -1;
        string? reasonWhenLogged = null;
        _server.Log = _ =>
        {
            countWhenLogged = _server.ProtocolErrors;
            reasonWhenLogged = _server.LastProtocolError;
        };
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(_server.Endpoint);
        await socket.SendAsync(new byte[ExtentProtocol.HelloBytes]);
        await WaitUntilAsync(() => _server.ProtocolErrors == 1);
        Assert.Equal(0, countWhenLogged);
        Assert.Contains("bad magic", reasonWhenLogged);
    }

    internal static async Task WaitUntilAsync(Func<bool> condition, int seconds = 10)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not reached in time");
            await Task.Delay(10);
        }
    }
}
