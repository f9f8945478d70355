// A block backend that counts a guest's disk traffic and traces one operation in N: the
// decorator the cluster puts between a guest's virtio-blk device and its storage. Calls
// arrive on the machine's thread, one at a time, so the sampling count needs no lock.
using System.Diagnostics;

namespace Tern.Machine.Devices;

/// <summary>Counts and samples the operations on an inner <see cref="IBlockBackend"/>.</summary>
public sealed class ObservedBlockBackend : IBlockBackend
{
    private readonly IBlockBackend _inner;
    private readonly int _sampleEvery;
    private readonly KeyValuePair<string, object?>[] _readTags, _writeTags, _flushTags;
    private readonly string _vm;
    private long _operations;

    /// <summary>
    /// Wraps <paramref name="inner"/>, the disk of guest <paramref name="vm"/>; one operation in
    /// <paramref name="sampleEvery"/> becomes a span (0: none).
    /// </summary>
    public ObservedBlockBackend(IBlockBackend inner, string vm, int sampleEvery)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentOutOfRangeException.ThrowIfNegative(sampleEvery);
        _inner = inner;
        _vm = vm;
        _sampleEvery = sampleEvery;
        _readTags = [new("tern.vm", vm), new("tern.io", "read")];
        _writeTags = [new("tern.vm", vm), new("tern.io", "write")];
        _flushTags = [new("tern.vm", vm), new("tern.io", "flush")];
    }

    /// <inheritdoc/>
    public long Length => _inner.Length;

    /// <inheritdoc/>
    public bool ReadOnly => _inner.ReadOnly;

    /// <inheritdoc/>
    public string Id => _inner.Id;

    /// <inheritdoc/>
    public bool Read(long offset, Span<byte> destination)
    {
        using var span = Sample("guest.disk.read", offset, destination.Length);
        bool ok = _inner.Read(offset, destination);
        Count(_readTags, destination.Length, ok, span);
        return ok;
    }

    /// <inheritdoc/>
    public bool Write(long offset, ReadOnlySpan<byte> data)
    {
        using var span = Sample("guest.disk.write", offset, data.Length);
        bool ok = _inner.Write(offset, data);
        Count(_writeTags, data.Length, ok, span);
        return ok;
    }

    /// <inheritdoc/>
    public bool Flush()
    {
        using var span = Sample("guest.disk.flush", 0, 0);
        bool ok = _inner.Flush();
        Count(_flushTags, 0, ok, span);
        return ok;
    }

    private Activity? Sample(string name, long offset, int bytes)
    {
        if (_sampleEvery == 0 || ++_operations % _sampleEvery != 0 || !MachineTelemetry.Source.HasListeners())
            return null;
        // Each sampled operation is a trace of its own: the vCPU thread may have inherited the
        // span that booted the guest, and a guest's I/O must not grow that trace forever.
        Activity.Current = null;
        var span = MachineTelemetry.Source.StartActivity(name, ActivityKind.Internal);
        span?.SetTag("tern.vm", _vm);
        span?.SetTag("tern.disk", _inner.Id);
        span?.SetTag("tern.offset", offset);
        span?.SetTag("tern.bytes", bytes);
        span?.SetTag("tern.sample.every", _sampleEvery);
        return span;
    }

    private static void Count(KeyValuePair<string, object?>[] tags, int bytes, bool ok, Activity? span)
    {
        MachineTelemetry.DiskOperations.Add(1, tags);
        if (bytes > 0 && ok)
            MachineTelemetry.DiskBytes.Add(bytes, tags);
        if (!ok)
            span?.SetStatus(ActivityStatusCode.Error, "I/O error");
    }
}
