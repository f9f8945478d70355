// The typed errors of the extent pool. Each message names what is wrong in words a user of
// `tern pv|vg|lv` can act on; the CLI prints it as the one-line error.
namespace Tern.Storage;

/// <summary>A storage request that cannot be carried out; nothing was changed.</summary>
public class StorageException : Exception
{
    /// <summary>Creates the error with its user-facing message.</summary>
    public StorageException(string message) : base(message) { }

    /// <summary>Creates the error with its user-facing message and cause.</summary>
    public StorageException(string message, Exception inner) : base(message, inner) { }

    /// <summary>Creates the error with no message.</summary>
    public StorageException() { }
}

/// <summary>The file or device does not carry a valid Tern physical-volume label.</summary>
public sealed class NotAPhysicalVolumeException : StorageException
{
    /// <summary>Creates the error with its user-facing message.</summary>
    public NotAPhysicalVolumeException(string message) : base(message) { }

    /// <summary>Creates the error with no message.</summary>
    public NotAPhysicalVolumeException() { }

    /// <summary>Creates the error with its user-facing message and cause.</summary>
    public NotAPhysicalVolumeException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>Not enough free extents (or not enough distinct PVs or hosts) for an allocation.</summary>
public sealed class InsufficientSpaceException : StorageException
{
    /// <summary>Creates the error with its user-facing message.</summary>
    public InsufficientSpaceException(string message) : base(message) { }

    /// <summary>Creates the error with no message.</summary>
    public InsufficientSpaceException() { }

    /// <summary>Creates the error with its user-facing message and cause.</summary>
    public InsufficientSpaceException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>A block's data does not match its stored checksum on every copy that could serve it.</summary>
public sealed class ChecksumMismatchException : IOException
{
    /// <summary>Creates the error with its user-facing message.</summary>
    public ChecksumMismatchException(string message) : base(message) { }

    /// <summary>Creates the error with no message.</summary>
    public ChecksumMismatchException() { }

    /// <summary>Creates the error with its user-facing message and cause.</summary>
    public ChecksumMismatchException(string message, Exception inner) : base(message, inner) { }
}
