// A reader of the protobuf wire format, just enough to decode OTLP export requests in tests:
// varints, fixed 32/64-bit fields and length-delimited fields; anything else is skipped by its
// wire type. Written from the protobuf encoding specification.
namespace Tern.Node.Tests.Otlp;

internal ref struct ProtoReader(ReadOnlySpan<byte> data)
{
    private readonly ReadOnlySpan<byte> _data = data;
    private int _pos;

    public int Field { get; private set; }

    public int WireType { get; private set; }

    /// <summary>Moves to the next field; false at the end of the message.</summary>
    public bool Next()
    {
        if (_pos >= _data.Length)
            return false;
        ulong key = ReadVarint();
        Field = (int)(key >> 3);
        WireType = (int)(key & 7);
        if (Field == 0)
            throw new FormatException("protobuf: field number 0");
        return true;
    }

    public ulong ReadVarint()
    {
        ulong value = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            if (_pos >= _data.Length)
                throw new FormatException("protobuf: truncated varint");
            byte b = _data[_pos++];
            value |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
                return value;
        }
        throw new FormatException("protobuf: varint longer than 10 bytes");
    }

    public ulong ReadFixed64()
    {
        var v = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(Take(8));
        return v;
    }

    public uint ReadFixed32() => System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(Take(4));

    public ReadOnlySpan<byte> ReadBytes() => Take(checked((int)ReadVarint()));

    public string ReadString() => System.Text.Encoding.UTF8.GetString(ReadBytes());

    /// <summary>Skips the current field's value.</summary>
    public void Skip()
    {
        switch (WireType)
        {
            case 0: ReadVarint(); break;
            case 1: Take(8); break;
            case 2: ReadBytes(); break;
            case 5: Take(4); break;
            default: throw new FormatException($"protobuf: unsupported wire type {WireType}");
        }
    }

    private ReadOnlySpan<byte> Take(int n)
    {
        if (n < 0 || _pos + n > _data.Length)
            throw new FormatException("protobuf: field runs past the end of the message");
        var s = _data.Slice(_pos, n);
        _pos += n;
        return s;
    }
}
