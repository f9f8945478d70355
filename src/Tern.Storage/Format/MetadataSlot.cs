// One metadata slot of a PV: a 64-byte header (magic, sequence number, PV identity, payload
// length and CRC32C over header and payload) followed by the JSON payload. A commit writes the
// whole slot prefix in one write into the slot that does not hold the newest valid copy, then
// fsyncs; a torn write fails its checksum and the other slot still holds the previous copy.
using System.Buffers.Binary;
using System.Text.Json;

namespace Tern.Storage.Format;

/// <summary>A decoded metadata copy.</summary>
/// <param name="Slot">Slot index it was read from.</param>
/// <param name="Seqno">Its sequence number.</param>
/// <param name="Document">Its content.</param>
public sealed record MetadataCopy(int Slot, long Seqno, PvMetadataDocument Document);

/// <summary>Encoding and decoding of metadata slots.</summary>
public static class MetadataSlot
{
    /// <summary>Header size; the payload follows.</summary>
    public const int HeaderSize = 64;

    /// <summary>Slot magic: "TERN-MD1".</summary>
    public static ReadOnlySpan<byte> Magic => "TERN-MD1"u8;

    /// <summary>Encodes a copy, padded to a multiple of 4 KiB.</summary>
    public static byte[] Encode(Guid pvId, long seqno, PvMetadataDocument doc, int slotSize)
    {
        byte[] payload = JsonSerializer.SerializeToUtf8Bytes(doc, MetadataJsonContext.Default.PvMetadataDocument);
        int total = HeaderSize + payload.Length;
        if (total > slotSize)
            throw new StorageException($"volume-group metadata ({payload.Length} bytes) no longer fits a metadata slot of {slotSize} bytes");
        var b = new byte[(total + PvLabel.BlockSize - 1) / PvLabel.BlockSize * PvLabel.BlockSize];
        var s = b.AsSpan();
        Magic.CopyTo(s);
        BinaryPrimitives.WriteInt64LittleEndian(s[8..], seqno);
        pvId.TryWriteBytes(s[16..32]);
        BinaryPrimitives.WriteInt32LittleEndian(s[32..], payload.Length);
        payload.CopyTo(s[HeaderSize..]);
        BinaryPrimitives.WriteUInt32LittleEndian(s[36..], Crc(s, payload.Length));
        return b;
    }

    /// <summary>Decodes a slot; null when it is empty, torn, damaged or belongs to another PV.</summary>
    public static MetadataCopy? TryDecode(ReadOnlySpan<byte> s, Guid pvId, int slot)
    {
        if (s.Length < HeaderSize || !s[..8].SequenceEqual(Magic))
            return null;
        int length = BinaryPrimitives.ReadInt32LittleEndian(s[32..]);
        if (length < 0 || length > s.Length - HeaderSize)
            return null;
        if (BinaryPrimitives.ReadUInt32LittleEndian(s[36..]) != Crc(s, length) || new Guid(s[16..32]) != pvId)
            return null;
        long seqno = BinaryPrimitives.ReadInt64LittleEndian(s[8..]);
        try
        {
            var doc = JsonSerializer.Deserialize(s.Slice(HeaderSize, length), MetadataJsonContext.Default.PvMetadataDocument);
            return doc is null ? null : new MetadataCopy(slot, seqno, doc);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    // CRC32C over the header (with its CRC field taken as zero) and the payload.
    private static uint Crc(ReadOnlySpan<byte> s, int payloadLength)
    {
        Span<byte> header = stackalloc byte[HeaderSize];
        s[..HeaderSize].CopyTo(header);
        header[36..40].Clear();
        var crc = new System.IO.Hashing.Crc32(System.IO.Hashing.Crc32ParameterSet.Crc32C);
        crc.Append(header);
        crc.Append(s.Slice(HeaderSize, payloadLength));
        return crc.GetCurrentHashAsUInt32();
    }
}
