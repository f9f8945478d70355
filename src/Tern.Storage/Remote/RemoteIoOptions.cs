// Knobs of the remote extent client. Each default says why it is what it is.
namespace Tern.Storage.Remote;

/// <summary>Options of a <see cref="RemotePhysicalVolumeIo"/>.</summary>
public sealed record RemoteIoOptions
{
    /// <summary>
    /// How long a request may wait for its answer, reconnects and retries included, before it
    /// fails with an <see cref="IOException"/> naming the server. 5 s: long enough to ride out a
    /// dropped connection on a loaded host, short enough that a mirror degrades before a guest's
    /// own disk timeout (Linux's default is 30 s) fires.
    /// </summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long one connection attempt may take. 2 s: a loopback or LAN connect is
    /// sub-millisecond, so anything slower is a host that is not there.
    /// </summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Bytes (written data plus expected read data) that may be outstanding on the connection.
    /// 8 MiB: about 4 ms of loopback TCP at 2 GB/s, enough to keep the pipe full, yet small
    /// enough that one client cannot bury the server's socket buffers.
    /// </summary>
    public int WindowBytes { get; init; } = 8 << 20;

    /// <summary>
    /// Most request payload batched into one frame. 1 MiB: a frame is one syscall on each side;
    /// larger frames only add latency to the requests queued behind them.
    /// </summary>
    public int MaxFrameBytes { get; init; } = ExtentProtocol.MaxBatchBytes;

    internal void Validate()
    {
        if (RequestTimeout <= TimeSpan.Zero || ConnectTimeout <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(RequestTimeout), "the request and connect timeouts must be positive");
        if (WindowBytes < ExtentProtocol.MaxPiece)
            throw new ArgumentOutOfRangeException(nameof(WindowBytes), $"the window must hold at least one request piece ({ExtentProtocol.MaxPiece} bytes)");
        if (MaxFrameBytes < ExtentProtocol.MaxPiece || MaxFrameBytes > ExtentProtocol.MaxBatchBytes)
            throw new ArgumentOutOfRangeException(nameof(MaxFrameBytes), $"the frame size must be between {ExtentProtocol.MaxPiece} and {ExtentProtocol.MaxBatchBytes} bytes");
    }
}
