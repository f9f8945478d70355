// Two network backends wired back to back: what one guest's NIC sends, the other's receives.
// Each direction is a bounded queue (frames beyond it are dropped, as a busy switch would), safe
// to use when the two guests run on different VM threads.
using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;

namespace Tern.Machine.Devices.Virtio;

/// <summary>A pair of connected <see cref="INetBackend"/> endpoints.</summary>
public sealed class LoopbackPair
{
    /// <summary>Frames queued per direction before further frames are dropped.</summary>
    public const int QueueLimit = 256;

    /// <summary>Creates the two connected endpoints.</summary>
    public LoopbackPair()
    {
        A = new Endpoint();
        B = new Endpoint();
        A.Peer = B;
        B.Peer = A;
    }

    /// <summary>The first endpoint.</summary>
    public Endpoint A { get; }

    /// <summary>The second endpoint.</summary>
    public Endpoint B { get; }

    /// <summary>One end of the pair.</summary>
    public sealed class Endpoint : INetBackend
    {
        private readonly ConcurrentQueue<byte[]> _inbox = new();
        private int _count;
        private long _dropped;

        internal Endpoint? Peer { get; set; }

        /// <summary>Frames dropped because this endpoint's inbox was full.</summary>
        public long Dropped => Interlocked.Read(ref _dropped);

        /// <inheritdoc/>
        public event Action? FrameAvailable;

        /// <inheritdoc/>
        public void Send(ReadOnlySpan<byte> frame) => Peer!.Deliver(frame.ToArray());

        private void Deliver(byte[] frame)
        {
            if (Interlocked.Increment(ref _count) > QueueLimit)
            {
                Interlocked.Decrement(ref _count);
                Interlocked.Increment(ref _dropped);
                return;
            }
            _inbox.Enqueue(frame);
            FrameAvailable?.Invoke();
        }

        /// <inheritdoc/>
        public bool TryReceive([NotNullWhen(true)] out byte[]? frame)
        {
            if (!_inbox.TryDequeue(out frame))
                return false;
            Interlocked.Decrement(ref _count);
            return true;
        }
    }
}
