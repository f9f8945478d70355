// The label in the first 4 KiB of a physical volume: it says "this is a Tern PV", gives the
// PV its identity and owner, and fixes where the metadata, checksum and data areas lie.
// Written once by `pv create`, never rewritten. Layout (little-endian) in docs/storage-format.md.
using System.Buffers.Binary;
using System.Text;

namespace Tern.Storage.Format;

/// <summary>The fixed geometry and identity of one physical volume.</summary>
public sealed record PvLabel
{
    /// <summary>Size of the label block and of a data block.</summary>
    public const int BlockSize = 4096;

    /// <summary>Bytes covered by the label checksum; the CRC32C follows them.</summary>
    public const int HeaderLength = 188;

    /// <summary>Current format version.</summary>
    public const uint CurrentVersion = 1;

    /// <summary>Maximum UTF-8 length of the owning host's name.</summary>
    public const int MaxHostLength = 64;

    /// <summary>Label magic: "TERN-PV1".</summary>
    public static ReadOnlySpan<byte> Magic => "TERN-PV1"u8;

    /// <summary>Identity of the PV.</summary>
    public required Guid Id { get; init; }

    /// <summary>The host that owns (serves) the PV.</summary>
    public required string Host { get; init; }

    /// <summary>Size of the PV in bytes when it was labelled.</summary>
    public required long Size { get; init; }

    /// <summary>Offset of the first metadata slot.</summary>
    public required long MetadataOffset { get; init; }

    /// <summary>Number of metadata slots (at least 2).</summary>
    public required int MetadataSlots { get; init; }

    /// <summary>Size of each metadata slot in bytes.</summary>
    public required int MetadataSlotSize { get; init; }

    /// <summary>Size of a region of the write-intent bitmap of checksum tags: 2 MiB of data per bit.</summary>
    public const long TagRegionSize = 2L << 20;

    /// <summary>
    /// Offset of the tag write-intent bitmap: one bit per 2 MiB of data area, set (durably) before the
    /// region's blocks are first written and cleared at a clean close. After an unclean stop the
    /// tags of marked regions are recalculated from their data.
    /// </summary>
    public required long BitmapOffset { get; init; }

    /// <summary>Length of the bitmap in bytes (whole blocks).</summary>
    public required long BitmapLength { get; init; }

    /// <summary>Regions of the bitmap.</summary>
    public long TagRegions => (DataLength + TagRegionSize - 1) / TagRegionSize;

    /// <summary>Offset of the checksum area: one 4-byte tag per data block.</summary>
    public required long ChecksumOffset { get; init; }

    /// <summary>Length of the checksum area in bytes (a multiple of 4 KiB).</summary>
    public required long ChecksumLength { get; init; }

    /// <summary>Offset of the data area (1 MiB aligned).</summary>
    public required long DataOffset { get; init; }

    /// <summary>Number of 4 KiB blocks in the data area.</summary>
    public required long DataBlocks { get; init; }

    /// <summary>Length of the data area in bytes.</summary>
    public long DataLength => DataBlocks * BlockSize;

    /// <summary>Lays out a PV of <paramref name="size"/> bytes.</summary>
    public static PvLabel Plan(Guid id, string host, long size, int metadataSlots = 2, int metadataSlotSize = 512 * 1024)
    {
        if (metadataSlots < 2)
            throw new StorageException("a physical volume needs at least 2 metadata slots");
        if (metadataSlotSize < BlockSize || metadataSlotSize % BlockSize != 0)
            throw new StorageException($"metadata slot size {metadataSlotSize} is not a positive multiple of 4 KiB");
        if (Encoding.UTF8.GetByteCount(host) > MaxHostLength)
            throw new StorageException($"host name '{host}' is longer than {MaxHostLength} bytes");
        const long mib = 1 << 20;
        long mdaOffset = BlockSize;
        long bitmapOffset = mdaOffset + ((long)metadataSlots * metadataSlotSize);
        long bitmapLength = AlignUp(((size / TagRegionSize) + 1 + 7) / 8, BlockSize);
        long csOffset = bitmapOffset + bitmapLength;
        // Each data block costs 4 KiB of data plus a 4-byte tag; start from that bound and shrink until the
        // aligned layout fits.
        long blocks = Math.Max(0, (size - csOffset) / (BlockSize + 4));
        while (blocks > 0)
        {
            long csLength = AlignUp(blocks * 4, BlockSize);
            long dataOffset = AlignUp(csOffset + csLength, mib);
            long overflow = dataOffset + (blocks * BlockSize) - size;
            if (overflow <= 0)
            {
                return new PvLabel
                {
                    Id = id,
                    Host = host,
                    Size = size,
                    MetadataOffset = mdaOffset,
                    MetadataSlots = metadataSlots,
                    MetadataSlotSize = metadataSlotSize,
                    BitmapOffset = bitmapOffset,
                    BitmapLength = bitmapLength,
                    ChecksumOffset = csOffset,
                    ChecksumLength = csLength,
                    DataOffset = dataOffset,
                    DataBlocks = blocks,
                };
            }
            blocks -= (overflow + BlockSize - 1) / BlockSize;
        }
        throw new StorageException($"{size} bytes is too small for a physical volume");
    }

    /// <summary>Serializes the label into a 4 KiB block.</summary>
    public byte[] Encode()
    {
        var b = new byte[BlockSize];
        var s = b.AsSpan();
        Magic.CopyTo(s);
        BinaryPrimitives.WriteUInt32LittleEndian(s[8..], CurrentVersion);
        BinaryPrimitives.WriteUInt32LittleEndian(s[12..], HeaderLength);
        Id.TryWriteBytes(s[16..32]);
        BinaryPrimitives.WriteInt64LittleEndian(s[32..], Size);
        BinaryPrimitives.WriteInt64LittleEndian(s[40..], MetadataOffset);
        BinaryPrimitives.WriteInt32LittleEndian(s[48..], MetadataSlots);
        BinaryPrimitives.WriteInt32LittleEndian(s[52..], MetadataSlotSize);
        BinaryPrimitives.WriteInt64LittleEndian(s[56..], ChecksumOffset);
        BinaryPrimitives.WriteInt64LittleEndian(s[64..], ChecksumLength);
        BinaryPrimitives.WriteInt64LittleEndian(s[72..], DataOffset);
        BinaryPrimitives.WriteInt64LittleEndian(s[80..], DataBlocks);
        BinaryPrimitives.WriteInt32LittleEndian(s[88..], BlockSize);
        BinaryPrimitives.WriteInt64LittleEndian(s[96..], BitmapOffset);
        BinaryPrimitives.WriteInt64LittleEndian(s[104..], BitmapLength);
        int hostLen = Encoding.UTF8.GetBytes(Host, s[124..(124 + MaxHostLength)]);
        BinaryPrimitives.WriteInt32LittleEndian(s[120..], hostLen);
        BinaryPrimitives.WriteUInt32LittleEndian(s[HeaderLength..], Checksums.Crc32C(s[..HeaderLength]));
        return b;
    }

    /// <summary>Parses a label block, or explains why it is not one.</summary>
    public static PvLabel Decode(ReadOnlySpan<byte> s, string name)
    {
        if (s.Length < BlockSize || !s[..8].SequenceEqual(Magic))
            throw new NotAPhysicalVolumeException($"{name} is not a Tern physical volume (no PV label)");
        if (BinaryPrimitives.ReadUInt32LittleEndian(s[HeaderLength..]) != Checksums.Crc32C(s[..HeaderLength]))
            throw new NotAPhysicalVolumeException($"{name}: the physical-volume label is damaged (checksum mismatch)");
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(s[8..]);
        if (version != CurrentVersion)
            throw new NotAPhysicalVolumeException($"{name}: physical-volume label version {version} is not supported (this build reads version {CurrentVersion})");
        int hostLen = BinaryPrimitives.ReadInt32LittleEndian(s[120..]);
        if (hostLen is < 0 or > MaxHostLength || BinaryPrimitives.ReadInt32LittleEndian(s[88..]) != BlockSize)
            throw new NotAPhysicalVolumeException($"{name}: the physical-volume label is inconsistent");
        var label = new PvLabel
        {
            Id = new Guid(s[16..32]),
            Size = BinaryPrimitives.ReadInt64LittleEndian(s[32..]),
            MetadataOffset = BinaryPrimitives.ReadInt64LittleEndian(s[40..]),
            MetadataSlots = BinaryPrimitives.ReadInt32LittleEndian(s[48..]),
            MetadataSlotSize = BinaryPrimitives.ReadInt32LittleEndian(s[52..]),
            BitmapOffset = BinaryPrimitives.ReadInt64LittleEndian(s[96..]),
            BitmapLength = BinaryPrimitives.ReadInt64LittleEndian(s[104..]),
            ChecksumOffset = BinaryPrimitives.ReadInt64LittleEndian(s[56..]),
            ChecksumLength = BinaryPrimitives.ReadInt64LittleEndian(s[64..]),
            DataOffset = BinaryPrimitives.ReadInt64LittleEndian(s[72..]),
            DataBlocks = BinaryPrimitives.ReadInt64LittleEndian(s[80..]),
            Host = Encoding.UTF8.GetString(s.Slice(124, hostLen)),
        };
        if (label.MetadataSlots < 2 || label.MetadataSlotSize < BlockSize || label.DataBlocks <= 0
            || label.ChecksumLength < label.DataBlocks * 4 || label.DataOffset + label.DataLength > label.Size
            || label.BitmapLength * 8 < label.TagRegions || label.BitmapOffset + label.BitmapLength > label.ChecksumOffset)
            throw new NotAPhysicalVolumeException($"{name}: the physical-volume label is inconsistent");
        return label;
    }

    private static long AlignUp(long v, long a) => (v + a - 1) / a * a;
}
