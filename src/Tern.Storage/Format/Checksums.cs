// CRC32C (Castagnoli), the checksum of labels, metadata copies and every 4 KiB data block.
using System.IO.Hashing;

namespace Tern.Storage.Format;

/// <summary>CRC32C helpers.</summary>
public static class Checksums
{
    /// <summary>CRC32C of <paramref name="data"/>.</summary>
    public static uint Crc32C(ReadOnlySpan<byte> data) => Crc32.HashToUInt32(Crc32ParameterSet.Crc32C, data);

    /// <summary>
    /// The value stored for a data block: its CRC32C, except that 0 is stored as 0xFFFFFFFF,
    /// because 0 in the checksum area means "not written since allocation" (reads as zeros).
    /// </summary>
    public static uint BlockTag(ReadOnlySpan<byte> block)
    {
        uint crc = BlockCrc.Compute(block);
        return crc == 0 ? 0xFFFF_FFFFu : crc;
    }
}
