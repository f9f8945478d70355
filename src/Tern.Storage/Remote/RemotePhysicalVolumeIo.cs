// A PV on another node, reached through that node's ExtentServer (protocol: ExtentProtocol.cs).
// Callers' requests queue here; one sender task batches everything queued into frames of up to
// 1 MiB (one send each) while a window caps the bytes outstanding on the connection, and one
// receiver task completes requests as their answers arrive, in any order. I/O larger than a
// request piece is split and the pieces pipelined.
//
// Every request is idempotent (reads, writes at offsets, flushes), so when the connection
// drops, the requests without an answer go back to the front of the queue and are sent again
// on a new connection; the server stops the old connection first, so no stale copy of a
// request can land after its retry. A request that gets no answer within the request timeout
// (reconnects included) fails with an IOException that names the host and the endpoint.
using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Tern.Storage.Remote;

/// <summary>An <see cref="IPhysicalVolumeIo"/> served by an <see cref="ExtentServer"/> on another node.</summary>
public sealed class RemotePhysicalVolumeIo : IPhysicalVolumeIo
{
    private readonly string _host;
    private readonly IPEndPoint _endpoint;
    private readonly byte[] _token;
    private readonly Guid _pvId;
    private readonly RemoteIoOptions _options;
    private readonly Guid _session = Guid.NewGuid();
    private readonly object _gate = new();
    private readonly LinkedList<Pending> _queue = new();
    private readonly Dictionary<uint, Pending> _inFlight = [];
    private readonly SemaphoreSlim _wake = new(0);
    private readonly CancellationTokenSource _closed = new();
    private readonly Timer _watchdog;
    private ulong _attempt;
    private uint _nextId;
    private long _outstanding;
    private string? _lastError;
    private IOException? _fatal;
    private Task _run = Task.CompletedTask;
    private long _reconnects;

    private RemotePhysicalVolumeIo(string host, IPEndPoint endpoint, byte[] token, Guid pvId, RemoteIoOptions options)
    {
        _host = host;
        _endpoint = endpoint;
        _token = token;
        _pvId = pvId;
        _options = options;
        Name = $"{host}:{pvId}";
        var tick = TimeSpan.FromTicks(Math.Clamp(options.RequestTimeout.Ticks / 10, TimeSpan.TicksPerMillisecond * 10, TimeSpan.TicksPerMillisecond * 200));
        _watchdog = new Timer(_ => ExpireOverdue(), null, tick, tick);
    }

    /// <summary>Connects to PV <paramref name="pvId"/> on the extent server of <paramref name="host"/> at <paramref name="endpoint"/>.</summary>
    /// <exception cref="IOException">The server cannot be reached in the connect timeout, or refused the token or the PV.</exception>
    public static async Task<RemotePhysicalVolumeIo> ConnectAsync(string host, IPEndPoint endpoint, string token, Guid pvId, RemoteIoOptions? options = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(host);
        ArgumentNullException.ThrowIfNull(endpoint);
        ArgumentNullException.ThrowIfNull(token);
        options ??= new RemoteIoOptions();
        options.Validate();
        var io = new RemotePhysicalVolumeIo(host, endpoint, ExtentServer.ParseToken(token), pvId, options);
        try
        {
            var (stream, length) = await io.OpenConnectionAsync(ct).ConfigureAwait(false);
            io.Length = length;
            io._run = Task.Run(() => io.RunAsync(stream), CancellationToken.None);
            return io;
        }
        catch
        {
            io.Dispose();
            throw;
        }
    }

    /// <inheritdoc/>
    public string Name { get; }

    /// <inheritdoc/>
    public long Length { get; private set; }

    /// <summary>The server's host name, for messages.</summary>
    public string Host => _host;

    /// <summary>The server's endpoint.</summary>
    public IPEndPoint Endpoint => _endpoint;

    /// <summary>How many times the connection was re-established after a drop.</summary>
    public long Reconnects => Interlocked.Read(ref _reconnects);

    private string Where => $"extent server on {_host} ({_endpoint})";

    // One request (or one piece of a larger I/O) from queueing to its answer.
    private sealed class Pending : TaskCompletionSource
    {
        public Pending()
            : base(TaskCreationOptions.RunContinuationsAsynchronously)
        {
        }

        public byte Op;
        public uint Id;
        public long Offset;
        public int Length;
        public ReadOnlyMemory<byte> Data;
        public Memory<byte> Target;
        public WriterId? Writer;
        public long Deadline;
        public bool Finished;
        public LinkedListNode<Pending>? Node;

        public int WindowCost => Op == ExtentProtocol.OpFlush ? 0 : Length;
    }

    /// <inheritdoc/>
    public ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        if (buffer.Length <= ExtentProtocol.MaxPiece)
            return new ValueTask(Submit(ExtentProtocol.OpRead, offset, buffer.Length, default, buffer, null, cancellationToken));
        return SubmitPiecesAsync(ExtentProtocol.OpRead, offset, default, buffer, null, cancellationToken);
    }

    /// <inheritdoc/>
    public ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        var writer = PvWriter.Current;
        if (data.Length <= ExtentProtocol.MaxPiece)
            return new ValueTask(Submit(ExtentProtocol.OpWrite, offset, data.Length, data, default, writer, cancellationToken));
        return SubmitPiecesAsync(ExtentProtocol.OpWrite, offset, data, default, writer, cancellationToken);
    }

    /// <inheritdoc/>
    public ValueTask FlushAsync(CancellationToken cancellationToken = default) =>
        new(Submit(ExtentProtocol.OpFlush, 0, 0, default, default, PvWriter.Current, cancellationToken));

    private async ValueTask SubmitPiecesAsync(byte op, long offset, ReadOnlyMemory<byte> data, Memory<byte> target, WriterId? writer, CancellationToken ct)
    {
        int total = op == ExtentProtocol.OpRead ? target.Length : data.Length;
        var pieces = new Task[(total + ExtentProtocol.MaxPiece - 1) / ExtentProtocol.MaxPiece];
        for (int i = 0; i < pieces.Length; i++)
        {
            int at = i * ExtentProtocol.MaxPiece, n = Math.Min(ExtentProtocol.MaxPiece, total - at);
            pieces[i] = op == ExtentProtocol.OpRead
                ? Submit(op, offset + at, n, default, target.Slice(at, n), writer, ct)
                : Submit(op, offset + at, n, data.Slice(at, n), default, writer, ct);
        }
        // Wait for every piece before reporting, so no piece still uses the caller's buffer.
        Exception? first = null;
        foreach (var t in pieces)
        {
            try
            {
                await t.ConfigureAwait(false);
            }
            catch (Exception e)
            {
                first ??= e;
            }
        }
        if (first is not null)
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(first);
    }

    private Task Submit(byte op, long offset, int length, ReadOnlyMemory<byte> data, Memory<byte> target, WriterId? writer, CancellationToken ct)
    {
        var p = new Pending { Op = op, Offset = offset, Length = length, Data = data, Target = target, Writer = writer };
        lock (_gate)
        {
            if (_fatal is { } fatal)
                return Task.FromException(new IOException(fatal.Message, fatal));
            if (_closed.IsCancellationRequested)
                return Task.FromException(new ObjectDisposedException(Name));
            p.Id = ++_nextId;
            p.Deadline = Environment.TickCount64 + (long)_options.RequestTimeout.TotalMilliseconds;
            p.Node = _queue.AddLast(p);
        }
        if (ct.CanBeCanceled)
        {
            // Only a request not yet sent can be withdrawn: once its data is on the wire it runs
            // to its answer or its timeout, so the caller's buffer is never used after it returns.
            var reg = ct.Register(() =>
            {
                lock (_gate)
                {
                    if (p.Finished || p.Node is null)
                        return;
                    _queue.Remove(p.Node);
                    p.Node = null;
                    p.Finished = true;
                }
                p.TrySetCanceled(ct);
            });
            _ = p.Task.ContinueWith(_ => reg.Dispose(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
        _wake.Release();
        return p.Task;
    }

    private async Task<(NetworkStream Stream, long Length)> OpenConnectionAsync(CancellationToken ct)
    {
        var socket = new Socket(_endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        NetworkStream? stream = null;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct, _closed.Token);
        timeout.CancelAfter(_options.ConnectTimeout);
        try
        {
            await socket.ConnectAsync(_endpoint, timeout.Token).ConfigureAwait(false);
            stream = new NetworkStream(socket, ownsSocket: true);
            var hello = new byte[ExtentProtocol.HelloBytes];
            ExtentProtocol.WriteHello(hello, _token, _pvId, _session, Interlocked.Increment(ref _attempt));
            await stream.WriteAsync(hello, timeout.Token).ConfigureAwait(false);
            var reply = new byte[11];
            await stream.ReadExactlyAsync(reply, timeout.Token).ConfigureAwait(false);
            int n = BinaryPrimitives.ReadUInt16LittleEndian(reply.AsSpan(9));
            var message = new byte[n];
            await stream.ReadExactlyAsync(message, timeout.Token).ConfigureAwait(false);
            if (reply[0] != ExtentProtocol.HelloOk)
                throw new ExtentRefusal($"{Where} refused physical volume {_pvId}: {Encoding.UTF8.GetString(message)}");
            return (stream, BinaryPrimitives.ReadInt64LittleEndian(reply.AsSpan(1)));
        }
        catch (Exception e)
        {
            if (stream is not null)
                await stream.DisposeAsync().ConfigureAwait(false);
            else
                socket.Dispose();
            if (e is ExtentRefusal)
                throw;
            if (e is OperationCanceledException && !ct.IsCancellationRequested && !_closed.IsCancellationRequested)
                throw new IOException($"{Where} did not answer the connection in {ExtentProtocol.Seconds(_options.ConnectTimeout)}", e);
            if (e is SocketException or IOException or EndOfStreamException)
                throw new IOException($"cannot reach {Where}: {e.Message}", e);
            throw;
        }
    }

    /// <summary>A refusal by the server (token or PV): retrying cannot help.</summary>
    private sealed class ExtentRefusal(string message) : IOException(message);

    private async Task RunAsync(NetworkStream first)
    {
        int backoff = 0;
        NetworkStream? stream = first;
        while (stream is not null && !_closed.IsCancellationRequested)
        {
            await ServeConnectionAsync(stream).ConfigureAwait(false);
            Requeue();
            stream = null;
            while (stream is null && !_closed.IsCancellationRequested)
            {
                // Reconnect only while there is work: an idle client has nothing to retry.
                bool idle;
                lock (_gate)
                    idle = _queue.Count == 0;
                try
                {
                    if (idle)
                    {
                        await _wake.WaitAsync(_closed.Token).ConfigureAwait(false);
                        _wake.Release();
                    }
                    (stream, _) = await OpenConnectionAsync(_closed.Token).ConfigureAwait(false);
                    Interlocked.Increment(ref _reconnects);
                    backoff = 0;
                }
                catch (ExtentRefusal e)
                {
                    FailAll(e, fatal: true);
                    return;
                }
                catch (IOException e)
                {
                    Volatile.Write(ref _lastError, e.Message);
                    backoff = Math.Min(backoff == 0 ? 20 : backoff * 2, 500);
                    try
                    {
                        await Task.Delay(backoff, _closed.Token).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException)
                    {
                        return;
                    }
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    // Runs the sender and the receiver on one connection until either stops.
    private async Task ServeConnectionAsync(NetworkStream stream)
    {
        using var down = CancellationTokenSource.CreateLinkedTokenSource(_closed.Token);
        var send = SendLoopAsync(stream, down.Token);
        var receive = ReceiveLoopAsync(stream, down.Token);
        await Task.WhenAny(send, receive).ConfigureAwait(false);
        await down.CancelAsync().ConfigureAwait(false);
        await stream.DisposeAsync().ConfigureAwait(false);
        foreach (var t in new[] { send, receive })
        {
            try
            {
                await t.ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException or InvalidDataException)
            {
                if (e is not OperationCanceledException)
                    Volatile.Write(ref _lastError, e.Message);
            }
        }
    }

    // The requests that were sent but not answered go back to the front of the queue, in order.
    private void Requeue()
    {
        lock (_gate)
        {
            var sent = new List<Pending>(_inFlight.Values);
            _inFlight.Clear();
            _outstanding = 0;
            sent.Sort((a, b) => b.Id.CompareTo(a.Id));
            foreach (var p in sent)
                p.Node = _queue.AddFirst(p);
        }
    }

    private async Task SendLoopAsync(NetworkStream stream, CancellationToken ct)
    {
        byte[] frame = ArrayPool<byte>.Shared.Rent(ExtentProtocol.MaxFrame + 4);
        try
        {
            while (true)
            {
                int length = BuildFrame(frame);
                if (length == 0)
                {
                    await _wake.WaitAsync(ct).ConfigureAwait(false);
                    continue;
                }
                await stream.WriteAsync(frame.AsMemory(0, length), ct).ConfigureAwait(false);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(frame);
        }
    }

    // Moves queued requests into one frame while they fit the frame and the window; returns the
    // frame's size (0 when nothing could be sent). Runs under the gate, so a request that times
    // out or is cancelled meanwhile is never half copied.
    private int BuildFrame(byte[] frame)
    {
        int at = 4, batch = 0;
        lock (_gate)
        {
            while (_queue.First is { } node)
            {
                var p = node.Value;
                int header = ExtentProtocol.RequestHeader + (p.Writer is null ? 0 : ExtentProtocol.WriterBytes);
                int data = p.Op == ExtentProtocol.OpWrite ? p.Length : 0;
                if (at > 4 && (at + header + data > ExtentProtocol.MaxFrame + 4 || batch + p.WindowCost > _options.MaxFrameBytes))
                    break;
                if (_outstanding > 0 && _outstanding + p.WindowCost > _options.WindowBytes)
                    break;
                _queue.RemoveFirst();
                p.Node = null;
                at += ExtentProtocol.WriteRequest(frame.AsSpan(at), p.Op, p.Id, p.Offset, p.Length, p.Writer);
                if (data > 0)
                {
                    p.Data.Span.CopyTo(frame.AsSpan(at));
                    at += data;
                }
                batch += p.WindowCost;
                _outstanding += p.WindowCost;
                _inFlight[p.Id] = p;
            }
        }
        if (at == 4)
            return 0;
        BinaryPrimitives.WriteUInt32LittleEndian(frame, (uint)(at - 4));
        return at;
    }

    // Reads answers as they arrive. Small ones are taken from a buffer that each receive call
    // fills as far as it can (many answers per syscall); the data of a read goes straight from
    // the socket into the caller's buffer once what was already buffered is copied.
    private async Task ReceiveLoopAsync(NetworkStream stream, CancellationToken ct)
    {
        byte[] buffer = ArrayPool<byte>.Shared.Rent(ReceiveBuffer);
        int start = 0, end = 0;
        async ValueTask EnsureAsync(int n)
        {
            if (end - start >= n)
                return;
            if (start > 0)
            {
                Buffer.BlockCopy(buffer, start, buffer, 0, end - start);
                end -= start;
                start = 0;
            }
            end += await stream.ReadAtLeastAsync(buffer.AsMemory(end), n - end, throwOnEndOfStream: true, ct).ConfigureAwait(false);
        }
        // Moves `length` bytes of the stream into `target` (or drops them when it is empty).
        async ValueTask TakeAsync(Memory<byte> target, int length)
        {
            int buffered = Math.Min(length, end - start);
            if (!target.IsEmpty)
                buffer.AsMemory(start, buffered).CopyTo(target);
            start += buffered;
            int rest = length - buffered;
            if (rest == 0)
                return;
            if (!target.IsEmpty)
            {
                await stream.ReadExactlyAsync(target[buffered..length], ct).ConfigureAwait(false);
                return;
            }
            while (rest > 0)
            {
                int n = await stream.ReadAsync(buffer.AsMemory(0, Math.Min(rest, buffer.Length)), ct).ConfigureAwait(false);
                if (n == 0)
                    throw new EndOfStreamException();
                rest -= n;
            }
            start = end = 0;
        }
        try
        {
            while (true)
            {
                await EnsureAsync(4).ConfigureAwait(false);
                uint frame = BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(start));
                start += 4;
                if (frame == 0 || frame > ExtentProtocol.MaxFrame)
                    throw new InvalidDataException($"{Where} sent a frame of {frame} bytes");
                long left = frame;
                bool freed = false;
                while (left > 0)
                {
                    if (left < ExtentProtocol.ResponseHeader)
                        throw new InvalidDataException($"{Where} sent a truncated response");
                    await EnsureAsync(ExtentProtocol.ResponseHeader).ConfigureAwait(false);
                    uint id = BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(start));
                    byte status = buffer[start + 4];
                    uint length = BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(start + 5));
                    start += ExtentProtocol.ResponseHeader;
                    left -= ExtentProtocol.ResponseHeader;
                    if (length > left)
                        throw new InvalidDataException($"{Where} sent a response that overruns its frame");
                    left -= length;
                    Pending? p;
                    lock (_gate)
                    {
                        if (_inFlight.Remove(id, out p))
                        {
                            _outstanding -= p.WindowCost;
                            p.Finished = true;
                            freed = true;
                        }
                    }
                    try
                    {
                        if (p is not null && status == ExtentProtocol.StatusOk && p.Op == ExtentProtocol.OpRead && length == p.Length)
                        {
                            await TakeAsync(p.Target, (int)length).ConfigureAwait(false);
                            p.TrySetResult();
                            continue;
                        }
                        if (p is null || length > MaxSmallAnswer)
                        {
                            // An answer to a request that timed out meanwhile, or not one we can use.
                            await TakeAsync(Memory<byte>.Empty, (int)length).ConfigureAwait(false);
                            p?.TrySetException(new IOException($"{Where} sent a malformed answer (status {status}, {length} bytes)"));
                            continue;
                        }
                        await EnsureAsync((int)length).ConfigureAwait(false);
                    }
                    catch when (p is not null)
                    {
                        // The connection broke inside this answer: the request is still unanswered,
                        // so it goes back with the others to be sent again.
                        lock (_gate)
                        {
                            p.Finished = false;
                            _inFlight[p.Id] = p;
                            _outstanding += p.WindowCost;
                        }
                        throw;
                    }
                    var body = buffer.AsSpan(start, (int)length);
                    start += (int)length;
                    Finish(p, status, body);
                }
                if (freed)
                    _wake.Release();
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private const int ReceiveBuffer = 256 << 10;
    private const int MaxSmallAnswer = 4096;

    // Completes a request whose answer is not read data.
    private void Finish(Pending p, byte status, ReadOnlySpan<byte> body)
    {
        switch (status)
        {
            case ExtentProtocol.StatusOk when p.Op != ExtentProtocol.OpRead:
                p.TrySetResult();
                break;
            case ExtentProtocol.StatusFenced when body.Length == 8 && p.Writer is { } w:
                p.TrySetException(new FencedWriteException(w, BinaryPrimitives.ReadInt64LittleEndian(body), Name));
                break;
            case ExtentProtocol.StatusError:
                p.TrySetException(new IOException($"{Name}: {Encoding.UTF8.GetString(body)}"));
                break;
            default:
                p.TrySetException(new IOException($"{Where} sent a malformed answer (status {status}, {body.Length} bytes)"));
                break;
        }
    }

    private void ExpireOverdue()
    {
        long now = Environment.TickCount64;
        List<Pending>? expired = null;
        lock (_gate)
        {
            for (var node = _queue.First; node is not null;)
            {
                var next = node.Next;
                if (node.Value.Deadline <= now)
                {
                    _queue.Remove(node);
                    node.Value.Node = null;
                    node.Value.Finished = true;
                    (expired ??= []).Add(node.Value);
                }
                node = next;
            }
            foreach (var p in _inFlight.Values)
            {
                if (p.Deadline <= now)
                    (expired ??= []).Add(p);
            }
            if (expired is null)
                return;
            foreach (var p in expired)
            {
                if (_inFlight.Remove(p.Id))
                {
                    _outstanding -= p.WindowCost;
                    p.Finished = true;
                }
            }
        }
        string? why = Volatile.Read(ref _lastError);
        var error = $"{Where} did not answer in {ExtentProtocol.Seconds(_options.RequestTimeout)}{(why is null ? "" : $" ({why})")}";
        foreach (var p in expired)
            p.TrySetException(new IOException(error));
        _wake.Release();
    }

    private void FailAll(IOException error, bool fatal)
    {
        List<Pending> all;
        lock (_gate)
        {
            if (fatal)
                _fatal = error;
            all = [.. _queue, .. _inFlight.Values];
            _queue.Clear();
            _inFlight.Clear();
            _outstanding = 0;
            foreach (var p in all)
            {
                p.Node = null;
                p.Finished = true;
            }
        }
        foreach (var p in all)
            p.TrySetException(new IOException(error.Message, error));
    }

    /// <summary>Closes the connection; requests still waiting fail.</summary>
    public void Dispose()
    {
        if (_closed.IsCancellationRequested)
            return;
        _closed.Cancel();
        _watchdog.Dispose();
        try
        {
            _run.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
            // The loops end with the cancellation; their errors no longer matter.
        }
        FailAll(new IOException($"{Name}: the connection to {Where} is closed"), fatal: false);
        _closed.Dispose();
        _wake.Dispose();
    }
}
