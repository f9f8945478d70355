// The distinct error of a write refused by a fence: a newer generation of the LV's owner exists.
namespace Tern.Storage.Remote;

/// <summary>A write (or flush) by a stale generation of an LV's writer, refused by the fence.</summary>
public sealed class FencedWriteException : IOException
{
    /// <summary>Creates the error for <paramref name="writer"/> refused because <paramref name="owner"/> holds the fence.</summary>
    public FencedWriteException(WriterId writer, long owner, string? where = null)
        : base($"write by generation {writer.Generation} of LV {writer.LvId} refused: generation {owner} owns it{(where is null ? "" : $" ({where})")}")
    {
        Writer = writer;
        OwnerGeneration = owner;
    }

    /// <summary>Creates the error with a message only.</summary>
    public FencedWriteException(string message) : base(message) { }

    /// <summary>Creates the error with a message and cause.</summary>
    public FencedWriteException(string message, Exception inner) : base(message, inner) { }

    /// <summary>Creates the error with no message.</summary>
    public FencedWriteException() { }

    /// <summary>The refused writer.</summary>
    public WriterId Writer { get; }

    /// <summary>The generation that holds the fence.</summary>
    public long OwnerGeneration { get; }
}
