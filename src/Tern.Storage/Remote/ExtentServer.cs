// Serves a node's PVs to other nodes over TCP (protocol: ExtentProtocol.cs). Each connection
// carries one client's requests for one PV: a reader task takes frames off the socket while an
// executor runs their requests in order and sends the answers back batched, one send per
// frame. A client that reconnects names its session; the server stops the session's previous
// connection (letting a request already running finish) before the new one may run anything,
// so a request retried on the new connection can never be overtaken by its stale twin.
//
// Writes that carry a WriterId pass the node's FenceTable; a stale one is refused with its own
// status. Input from the network is hostile: a bad hello, a frame over the limit, an unknown
// opcode or a length that does not fit closes that connection with a logged reason.
using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Threading.Channels;

namespace Tern.Storage.Remote;

/// <summary>A TCP server for the extents of this node's PVs, fenced by a <see cref="FenceTable"/>.</summary>
public sealed class ExtentServer : IAsyncDisposable
{
    private static readonly TimeSpan HelloTimeout = TimeSpan.FromSeconds(5);

    private readonly Socket _listener;
    private readonly FenceTable _fences;
    private readonly byte[] _token;
    private readonly CancellationTokenSource _stop = new();
    private readonly Dictionary<Guid, Volume> _volumes = [];
    private readonly Dictionary<Guid, Connection> _sessions = [];
    private readonly HashSet<Connection> _connections = [];
    private readonly Lock _lock = new();
    private Task _accept = Task.CompletedTask;
    private long _refused, _requests, _protocolErrors;
    private string? _lastProtocolError;

    private sealed class Volume(Guid id, IPhysicalVolumeIo io)
    {
        public Guid Id { get; } = id;

        public IPhysicalVolumeIo Io { get; } = io;

        public volatile bool Removed;
    }

    private ExtentServer(Socket listener, FenceTable fences, byte[] token)
    {
        _listener = listener;
        _fences = fences;
        _token = token;
        Endpoint = (IPEndPoint)listener.LocalEndPoint!;
        Token = Convert.ToHexStringLower(token);
    }

    /// <summary>
    /// Starts listening on <paramref name="bind"/>:<paramref name="port"/> (0 picks a free port)
    /// with a fresh random token, or <paramref name="token"/> (64 hex digits) to keep a node's
    /// token across restarts.
    /// </summary>
    public static Task<ExtentServer> StartAsync(IPAddress bind, int port, FenceTable fences, string? token = null)
    {
        ArgumentNullException.ThrowIfNull(bind);
        ArgumentNullException.ThrowIfNull(fences);
        byte[] secret = token is null ? RandomNumberGenerator.GetBytes(ExtentProtocol.TokenBytes) : ParseToken(token);
        var listener = new Socket(bind.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.Bind(new IPEndPoint(bind, port));
            listener.Listen(128);
        }
        catch (SocketException e)
        {
            listener.Dispose();
            throw new IOException($"extent server cannot listen on {bind}:{port}: {e.Message}", e);
        }
        var server = new ExtentServer(listener, fences, secret);
        server._accept = Task.Run(server.AcceptLoopAsync);
        return Task.FromResult(server);
    }

    internal static byte[] ParseToken(string token)
    {
        if (token.Length != 2 * ExtentProtocol.TokenBytes)
            throw new ArgumentException($"an extent server token is {2 * ExtentProtocol.TokenBytes} hex digits, not {token.Length}", nameof(token));
        try
        {
            return Convert.FromHexString(token);
        }
        catch (FormatException)
        {
            throw new ArgumentException("an extent server token is hex digits only", nameof(token));
        }
    }

    /// <summary>Where the server listens.</summary>
    public IPEndPoint Endpoint { get; }

    /// <summary>The secret a client must present, as hex.</summary>
    public string Token { get; }

    /// <summary>The fences this server applies.</summary>
    public FenceTable Fences => _fences;

    /// <summary>Writes and flushes refused because their writer was stale.</summary>
    public long RefusedStaleWrites => Interlocked.Read(ref _refused);

    /// <summary>Requests served (of every kind, refused ones included).</summary>
    public long Requests => Interlocked.Read(ref _requests);

    /// <summary>Connections closed because of bad input.</summary>
    public long ProtocolErrors => Interlocked.Read(ref _protocolErrors);

    /// <summary>The reason the last connection with bad input was closed.</summary>
    public string? LastProtocolError => Volatile.Read(ref _lastProtocolError);

    /// <summary>Receives one line per connection refused or closed for bad input.</summary>
    public Action<string>? Log { get; set; }

    /// <summary>Serves <paramref name="io"/> as PV <paramref name="pvId"/>. The caller keeps ownership of the io.</summary>
    public void AddVolume(Guid pvId, IPhysicalVolumeIo io)
    {
        ArgumentNullException.ThrowIfNull(io);
        lock (_lock)
        {
            if (_volumes.TryGetValue(pvId, out var v) && !v.Removed)
                throw new ArgumentException($"physical volume {pvId} is already served (by {v.Io.Name})", nameof(pvId));
            _volumes[pvId] = new Volume(pvId, io);
        }
    }

    /// <summary>Stops serving PV <paramref name="pvId"/>: its connections are closed and new ones refused.</summary>
    public void RemoveVolume(Guid pvId)
    {
        List<Connection> drop = [];
        lock (_lock)
        {
            if (!_volumes.Remove(pvId, out var v))
                return;
            v.Removed = true;
            foreach (var c in _connections)
            {
                if (c.Volume == v)
                    drop.Add(c);
            }
        }
        foreach (var c in drop)
            c.Abort();
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket s;
            try
            {
                s = await _listener.AcceptAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException)
            {
                continue;
            }
            s.NoDelay = true;
            _ = Task.Run(() => ServeAsync(s));
        }
    }

    // The count goes up last: whoever sees it grow also sees the reason and the log line.
    private void Refuse(string reason)
    {
        Volatile.Write(ref _lastProtocolError, reason);
        Log?.Invoke($"extent server {Endpoint}: {reason}");
        Interlocked.Increment(ref _protocolErrors);
    }

    private async Task ServeAsync(Socket socket)
    {
        var stream = new NetworkStream(socket, ownsSocket: true);
        Connection? conn = null;
        try
        {
            conn = await HandshakeAsync(socket, stream).ConfigureAwait(false);
            if (conn is null)
                return;
            await conn.RunAsync().ConfigureAwait(false);
        }
        catch (ProtocolViolation e)
        {
            Refuse($"closed connection from {socket.RemoteEndPoint}: {e.Message}");
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The peer went away or the server is stopping.
        }
        catch (Exception e)
        {
            // A fault of the volume below (not of the peer): this connection ends, the server stays.
            Refuse($"closed connection from {socket.RemoteEndPoint}: {e.GetType().Name}: {e.Message}");
        }
        finally
        {
            if (conn is not null)
            {
                lock (_lock)
                {
                    _connections.Remove(conn);
                    if (_sessions.TryGetValue(conn.Session, out var current) && current == conn)
                        _sessions.Remove(conn.Session);
                }
                conn.Finished.TrySetResult();
            }
            await stream.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async Task<Connection?> HandshakeAsync(Socket socket, NetworkStream stream)
    {
        var hello = new byte[ExtentProtocol.HelloBytes];
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token))
        {
            timeout.CancelAfter(HelloTimeout);
            try
            {
                await stream.ReadExactlyAsync(hello, timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!_stop.IsCancellationRequested)
            {
                throw new ProtocolViolation($"no hello within {HelloTimeout.TotalSeconds:0} s");
            }
            catch (EndOfStreamException)
            {
                throw new ProtocolViolation("connection closed before the hello");
            }
        }
        if (!hello.AsSpan(0, 8).SequenceEqual(ExtentProtocol.Magic))
            throw new ProtocolViolation("not a Tern extent client (bad magic)");
        var pvId = new Guid(hello.AsSpan(8 + ExtentProtocol.TokenBytes, 16));
        var session = new Guid(hello.AsSpan(8 + ExtentProtocol.TokenBytes + 16, 16));
        ulong attempt = BinaryPrimitives.ReadUInt64LittleEndian(hello.AsSpan(8 + ExtentProtocol.TokenBytes + 32));
        if (!CryptographicOperations.FixedTimeEquals(hello.AsSpan(8, ExtentProtocol.TokenBytes), _token))
        {
            await RefuseHelloAsync(stream, ExtentProtocol.HelloBadToken, "wrong token", socket).ConfigureAwait(false);
            return null;
        }
        Volume? volume;
        Connection? previous;
        Connection conn;
        lock (_lock)
        {
            if (!_volumes.TryGetValue(pvId, out volume) || volume.Removed)
            {
                volume = null;
                previous = null;
                conn = null!;
            }
            else
            {
                _sessions.TryGetValue(session, out previous);
                if (previous is not null && previous.Attempt >= attempt)
                {
                    volume = null;
                    conn = null!;
                }
                else
                {
                    conn = new Connection(this, stream, volume, session, attempt);
                    _sessions[session] = conn;
                    _connections.Add(conn);
                }
            }
        }
        if (volume is null)
        {
            bool superseded = previous is not null;
            await RefuseHelloAsync(stream, superseded ? ExtentProtocol.HelloSuperseded : ExtentProtocol.HelloUnknownPv,
                superseded ? "a newer connection of this session exists" : $"no physical volume {pvId} is served here", socket).ConfigureAwait(false);
            return null;
        }
        if (previous is not null)
        {
            // The old connection may still hold requests the client has retried here: stop it,
            // and wait until the request it may be running has finished.
            previous.Abort();
            await previous.Finished.Task.ConfigureAwait(false);
        }
        await stream.WriteAsync(ExtentProtocol.HelloReply(ExtentProtocol.HelloOk, volume.Io.Length, ""), _stop.Token).ConfigureAwait(false);
        return conn;
    }

    private async Task RefuseHelloAsync(NetworkStream stream, byte status, string reason, Socket socket)
    {
        Refuse($"refused connection from {socket.RemoteEndPoint}: {reason}");
        try
        {
            await stream.WriteAsync(ExtentProtocol.HelloReply(status, 0, reason), _stop.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException)
        {
            // The client is gone already.
        }
    }

    /// <summary>Stops listening and closes every connection.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_stop.IsCancellationRequested)
            return;
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener.Dispose();
        List<Connection> all;
        lock (_lock)
            all = [.. _connections];
        foreach (var c in all)
            c.Abort();
        await _accept.ConfigureAwait(false);
        foreach (var c in all)
            await c.Finished.Task.ConfigureAwait(false);
        _stop.Dispose();
    }

    private sealed class ProtocolViolation(string message) : Exception(message);

    // One client connection to one PV.
    private sealed class Connection(ExtentServer server, NetworkStream stream, Volume volume, Guid session, ulong attempt)
    {
        private const int MaxErrorChars = 200;
        private ProtocolViolation? _violation;
        private readonly CancellationTokenSource _abort = CancellationTokenSource.CreateLinkedTokenSource(server._stop.Token);
        private readonly Channel<(byte[] Buffer, int Length)> _frames = Channel.CreateBounded<(byte[], int)>(
            new BoundedChannelOptions(4) { SingleReader = true, SingleWriter = true });

        public Volume Volume { get; } = volume;

        public Guid Session { get; } = session;

        public ulong Attempt { get; } = attempt;

        public TaskCompletionSource Finished { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Abort()
        {
            try
            {
                _abort.Cancel();
                stream.Socket.Shutdown(SocketShutdown.Both);
            }
            catch (Exception e) when (e is ObjectDisposedException or SocketException)
            {
                // Already closed.
            }
        }

        public async Task RunAsync()
        {
            var reader = Task.Run(ReadFramesAsync);
            try
            {
                await ExecuteAsync().ConfigureAwait(false);
            }
            finally
            {
                Abort();
                await reader.ConfigureAwait(false);
                while (_frames.Reader.TryRead(out var f))
                    ArrayPool<byte>.Shared.Return(f.Buffer);
                _abort.Dispose();
            }
            if (_violation is { } bad)
                throw bad;
        }

        private async Task ReadFramesAsync()
        {
            var header = new byte[4];
            try
            {
                while (true)
                {
                    int got = await stream.ReadAtLeastAsync(header, 4, throwOnEndOfStream: false, _abort.Token).ConfigureAwait(false);
                    if (got < 4)
                        break;
                    uint length = BinaryPrimitives.ReadUInt32LittleEndian(header);
                    if (length == 0 || length > ExtentProtocol.MaxFrame)
                        throw new ProtocolViolation($"frame of {length} bytes (the limit is {ExtentProtocol.MaxFrame})");
                    byte[] buffer = ArrayPool<byte>.Shared.Rent((int)length);
                    try
                    {
                        await stream.ReadExactlyAsync(buffer.AsMemory(0, (int)length), _abort.Token).ConfigureAwait(false);
                        await _frames.Writer.WriteAsync((buffer, (int)length), _abort.Token).ConfigureAwait(false);
                    }
                    catch
                    {
                        ArrayPool<byte>.Shared.Return(buffer);
                        throw;
                    }
                }
            }
            catch (ProtocolViolation e)
            {
                _violation = e;
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
            {
                // The peer went away, or this connection is being stopped.
            }
            finally
            {
                _frames.Writer.TryComplete();
            }
        }

        private async Task ExecuteAsync()
        {
            var io = Volume.Io;
            byte[] output = ArrayPool<byte>.Shared.Rent(ExtentProtocol.MaxFrame + 4);
            int outLen = 4;
            try
            {
                while (await _frames.Reader.WaitToReadAsync(_abort.Token).ConfigureAwait(false))
                {
                    while (_frames.Reader.TryRead(out var frame))
                    {
                        try
                        {
                            int at = 0;
                            var f = frame.Buffer.AsMemory(0, frame.Length);
                            while (at < frame.Length)
                            {
                                if (_abort.IsCancellationRequested || Volume.Removed)
                                    return;
                                var span = f.Span;
                                if (frame.Length - at < ExtentProtocol.RequestHeader)
                                    throw new ProtocolViolation($"truncated request header at byte {at} of a {frame.Length}-byte frame");
                                byte op = span[at];
                                byte flags = span[at + 1];
                                uint id = BinaryPrimitives.ReadUInt32LittleEndian(span[(at + 2)..]);
                                long offset = BinaryPrimitives.ReadInt64LittleEndian(span[(at + 6)..]);
                                uint length = BinaryPrimitives.ReadUInt32LittleEndian(span[(at + 14)..]);
                                at += ExtentProtocol.RequestHeader;
                                if (op is < ExtentProtocol.OpRead or > ExtentProtocol.OpFlush)
                                    throw new ProtocolViolation($"unknown opcode {op}");
                                if ((flags & ~ExtentProtocol.FlagHasWriter) != 0)
                                    throw new ProtocolViolation($"unknown flags 0x{flags:x2}");
                                if (length > ExtentProtocol.MaxPiece || offset < 0 || (op == ExtentProtocol.OpFlush && (length != 0 || offset != 0)))
                                    throw new ProtocolViolation($"bad request: opcode {op} at {offset} for {length} bytes");
                                WriterId? writer = null;
                                if ((flags & ExtentProtocol.FlagHasWriter) != 0)
                                {
                                    if (frame.Length - at < ExtentProtocol.WriterBytes)
                                        throw new ProtocolViolation("truncated writer id");
                                    writer = new WriterId(new Guid(span.Slice(at, 16)), BinaryPrimitives.ReadInt64LittleEndian(span[(at + 16)..]));
                                    at += ExtentProtocol.WriterBytes;
                                }
                                int need = ExtentProtocol.ResponseHeader + (op == ExtentProtocol.OpRead ? (int)length : 4 * MaxErrorChars);
                                if (outLen + need > ExtentProtocol.MaxFrame + 4)
                                    outLen = await SendAsync(output, outLen).ConfigureAwait(false);
                                Interlocked.Increment(ref server._requests);
                                switch (op)
                                {
                                    case ExtentProtocol.OpRead:
                                        outLen += await ReadAsync(io, id, offset, (int)length, output, outLen).ConfigureAwait(false);
                                        break;
                                    case ExtentProtocol.OpWrite:
                                        if (frame.Length - at < length)
                                            throw new ProtocolViolation($"write of {length} bytes overruns its frame");
                                        outLen += await WriteAsync(io, id, offset, f.Slice(at, (int)length), writer, output, outLen).ConfigureAwait(false);
                                        at += (int)length;
                                        break;
                                    default:
                                        outLen += await FlushAsync(io, id, writer, output, outLen).ConfigureAwait(false);
                                        break;
                                }
                            }
                        }
                        finally
                        {
                            ArrayPool<byte>.Shared.Return(frame.Buffer);
                        }
                    }
                    // Nothing more queued: answer what this batch produced, in one send.
                    if (outLen > 4)
                        outLen = await SendAsync(output, outLen).ConfigureAwait(false);
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(output);
            }
        }

        private async ValueTask<int> SendAsync(byte[] output, int outLen)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(output, (uint)(outLen - 4));
            await stream.WriteAsync(output.AsMemory(0, outLen), _abort.Token).ConfigureAwait(false);
            return 4;
        }

        private static int Error(uint id, string message, byte[] output, int at)
        {
            var text = message.AsSpan(0, Math.Min(message.Length, MaxErrorChars));
            int n = Encoding.UTF8.GetBytes(text, output.AsSpan(at + ExtentProtocol.ResponseHeader));
            ExtentProtocol.WriteResponseHeader(output.AsSpan(at), id, ExtentProtocol.StatusError, n);
            return ExtentProtocol.ResponseHeader + n;
        }

        private int Fenced(uint id, long owner, byte[] output, int at)
        {
            Interlocked.Increment(ref server._refused);
            ExtentProtocol.WriteResponseHeader(output.AsSpan(at), id, ExtentProtocol.StatusFenced, 8);
            BinaryPrimitives.WriteInt64LittleEndian(output.AsSpan(at + ExtentProtocol.ResponseHeader), owner);
            return ExtentProtocol.ResponseHeader + 8;
        }

        private async ValueTask<int> ReadAsync(IPhysicalVolumeIo io, uint id, long offset, int length, byte[] output, int at)
        {
            try
            {
                await io.ReadAsync(offset, output.AsMemory(at + ExtentProtocol.ResponseHeader, length), _abort.Token).ConfigureAwait(false);
            }
            catch (IOException e)
            {
                return Error(id, e.Message, output, at);
            }
            ExtentProtocol.WriteResponseHeader(output.AsSpan(at), id, ExtentProtocol.StatusOk, length);
            return ExtentProtocol.ResponseHeader + length;
        }

        private async ValueTask<int> WriteAsync(IPhysicalVolumeIo io, uint id, long offset, ReadOnlyMemory<byte> data, WriterId? writer, byte[] output, int at)
        {
            if (offset > io.Length - data.Length)
                return Error(id, $"write at {offset}+{data.Length} is outside the volume ({io.Length} bytes)", output, at);
            long owner = 0;
            if (writer is { } w && !server._fences.TryBeginWrite(w, out owner))
                return Fenced(id, owner, output, at);
            try
            {
                await io.WriteAsync(offset, data, _abort.Token).ConfigureAwait(false);
            }
            catch (IOException e)
            {
                return Error(id, e.Message, output, at);
            }
            finally
            {
                if (writer is { } done)
                    server._fences.EndWrite(done);
            }
            ExtentProtocol.WriteResponseHeader(output.AsSpan(at), id, ExtentProtocol.StatusOk, 0);
            return ExtentProtocol.ResponseHeader;
        }

        private async ValueTask<int> FlushAsync(IPhysicalVolumeIo io, uint id, WriterId? writer, byte[] output, int at)
        {
            if (writer is { } w && !server._fences.Admits(w))
                return Fenced(id, server._fences.Get(w.LvId), output, at);
            try
            {
                await io.FlushAsync(_abort.Token).ConfigureAwait(false);
            }
            catch (IOException e)
            {
                return Error(id, e.Message, output, at);
            }
            ExtentProtocol.WriteResponseHeader(output.AsSpan(at), id, ExtentProtocol.StatusOk, 0);
            return ExtentProtocol.ResponseHeader;
        }
    }
}
