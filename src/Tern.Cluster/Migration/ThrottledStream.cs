// A cap on a migration's bandwidth (--max-bandwidth): writes are paced so that, over any
// stretch longer than a few milliseconds, no more than the given bytes per second leave.
using System.Diagnostics;

namespace Tern.Cluster.Migration;

/// <summary>Wraps a stream and paces its writes to at most <c>bytesPerSecond</c>; reads pass through.</summary>
public sealed class ThrottledStream(Stream inner, long bytesPerSecond) : Stream
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private long _written;

    /// <inheritdoc/>
    public override bool CanRead => inner.CanRead;
    /// <inheritdoc/>
    public override bool CanSeek => false;
    /// <inheritdoc/>
    public override bool CanWrite => inner.CanWrite;
    /// <inheritdoc/>
    public override long Length => throw new NotSupportedException("a network stream has no length");
    /// <inheritdoc/>
    public override long Position { get => throw new NotSupportedException("a network stream has no position"); set => throw new NotSupportedException("a network stream has no position"); }

    /// <inheritdoc/>
    public override void Flush() => inner.Flush();
    /// <inheritdoc/>
    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);
    /// <inheritdoc/>
    public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);
    /// <inheritdoc/>
    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => inner.ReadAsync(buffer, cancellationToken);
    /// <inheritdoc/>
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => inner.ReadAsync(buffer, offset, count, cancellationToken);
    /// <inheritdoc/>
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException("a network stream cannot seek");
    /// <inheritdoc/>
    public override void SetLength(long value) => throw new NotSupportedException("a network stream has no length");

    /// <inheritdoc/>
    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer, offset, count).GetAwaiter().GetResult();

    /// <inheritdoc/>
    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <inheritdoc/>
    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        // Slices of at most 1/20 s of budget, each sent once the clock allows it.
        int slice = (int)Math.Clamp(bytesPerSecond / 20, 4096, 1 << 20);
        for (int pos = 0; pos < buffer.Length; pos += slice)
        {
            var part = buffer.Slice(pos, Math.Min(slice, buffer.Length - pos));
            double due = (double)(_written + part.Length) / bytesPerSecond;
            double wait = due - _clock.Elapsed.TotalSeconds;
            if (wait > 0.001)
                await Task.Delay(TimeSpan.FromSeconds(wait), cancellationToken).ConfigureAwait(false);
            await inner.WriteAsync(part, cancellationToken).ConfigureAwait(false);
            _written += part.Length;
        }
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
            inner.Dispose();
        base.Dispose(disposing);
    }
}
