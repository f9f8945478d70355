// The Stream members a console sink does not have (reading, seeking, a length), in one place
// for the streams that carry a guest's console output.
namespace Tern.Machine;

/// <summary>A stream that can only be written: everything else is refused.</summary>
public abstract class WriteOnlyStream : Stream
{
    /// <inheritdoc/>
    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    /// <inheritdoc/>
    public override void Flush()
    {
    }

    /// <inheritdoc/>
    public override bool CanRead => false;

    /// <inheritdoc/>
    public override bool CanSeek => false;

    /// <inheritdoc/>
    public override bool CanWrite => true;

    /// <inheritdoc/>
    public override long Length => throw new NotSupportedException("a console stream has no length");

    /// <inheritdoc/>
    public override long Position
    {
        get => throw new NotSupportedException("a console stream has no position");
        set => throw new NotSupportedException("a console stream has no position");
    }

    /// <inheritdoc/>
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("a console stream is write-only");

    /// <inheritdoc/>
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException("a console stream cannot seek");

    /// <inheritdoc/>
    public override void SetLength(long value) => throw new NotSupportedException("a console stream has no length");
}
