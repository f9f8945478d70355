// Paces a background copy (resync, repair) to a byte rate so that guests keep their I/O: after
// each piece the copier waits until the bytes done so far are due at that rate. Time the copy
// spent waiting for guest requests counts towards the pace, but a long stall earns at most one
// second of catching up, so a copy resumed after a pause does not burst.
namespace Tern.Storage;

/// <summary>Paces work to a number of bytes per second.</summary>
public sealed class ByteRateLimiter
{
    private static readonly TimeSpan MaxCredit = TimeSpan.FromSeconds(1);

    private readonly double _bytesPerSecond;
    private readonly TimeProvider _clock;
    private long _start;
    private long _bytes;

    /// <summary>A limiter of <paramref name="bytesPerSecond"/> (positive) on <paramref name="clock"/> (default: the system's).</summary>
    public ByteRateLimiter(long bytesPerSecond, TimeProvider? clock = null)
    {
        if (bytesPerSecond <= 0)
            throw new StorageException($"a rate of {bytesPerSecond} bytes/s is not a rate; give a positive number of bytes per second");
        _bytesPerSecond = bytesPerSecond;
        _clock = clock ?? TimeProvider.System;
        _start = _clock.GetTimestamp();
    }

    /// <summary>The rate.</summary>
    public long BytesPerSecond => (long)_bytesPerSecond;

    /// <summary>Counts <paramref name="bytes"/> as done and waits until they are due at the rate.</summary>
    public async ValueTask WaitAsync(long bytes, CancellationToken ct = default)
    {
        _bytes += bytes;
        var elapsed = _clock.GetElapsedTime(_start);
        var due = TimeSpan.FromSeconds(_bytes / _bytesPerSecond);
        if (elapsed - due > MaxCredit)
        {
            // Stalled for a while: forget the earlier pace rather than catch up at full speed.
            _start = _clock.GetTimestamp();
            _bytes = 0;
            return;
        }
        if (due > elapsed)
            await Task.Delay(due - elapsed, _clock, ct).ConfigureAwait(false);
    }
}
