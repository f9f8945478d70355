// Little-endian primitives for the machine-state stream. The reader checks every length
// against what remains, so a truncated or corrupted stream fails with InvalidSnapshotException
// instead of reading past its end or allocating absurd buffers.
using System.Buffers.Binary;
using System.Text;

namespace Tern.Machine.Snapshot;

/// <summary>A snapshot or migration stream that cannot be loaded, with the reason.</summary>
public sealed class InvalidSnapshotException(string message) : Exception(message);

/// <summary>Writes state fields.</summary>
public sealed class StateWriter
{
    private readonly List<byte> _bytes = [];

    /// <summary>The bytes written so far.</summary>
    public byte[] ToArray() => [.. _bytes];

    /// <summary>Writes a byte.</summary>
    public void U8(byte v) => _bytes.Add(v);

    /// <summary>Writes a boolean as one byte.</summary>
    public void Bool(bool v) => _bytes.Add(v ? (byte)1 : (byte)0);

    /// <summary>Writes a 32-bit value.</summary>
    public void U32(uint v)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, v);
        _bytes.AddRange(b);
    }

    /// <summary>Writes a 64-bit value.</summary>
    public void U64(ulong v)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, v);
        _bytes.AddRange(b);
    }

    /// <summary>Writes a signed 64-bit value.</summary>
    public void I64(long v) => U64((ulong)v);

    /// <summary>Writes a length-prefixed byte string.</summary>
    public void Bytes(ReadOnlySpan<byte> v)
    {
        U32((uint)v.Length);
        _bytes.AddRange(v);
    }

    /// <summary>Writes a length-prefixed UTF-8 string.</summary>
    public void String(string v) => Bytes(Encoding.UTF8.GetBytes(v));

    /// <summary>Writes a length-prefixed array of 64-bit values.</summary>
    public void U64s(ReadOnlySpan<ulong> v)
    {
        U32((uint)v.Length);
        foreach (var x in v)
            U64(x);
    }

    /// <summary>Writes a length-prefixed array of 32-bit values.</summary>
    public void U32s(ReadOnlySpan<uint> v)
    {
        U32((uint)v.Length);
        foreach (var x in v)
            U32(x);
    }

    /// <summary>Writes a length-prefixed array of signed 64-bit values.</summary>
    public void I64s(ReadOnlySpan<long> v)
    {
        U32((uint)v.Length);
        foreach (var x in v)
            I64(x);
    }

    /// <summary>Writes a length-prefixed array of booleans.</summary>
    public void Bools(ReadOnlySpan<bool> v)
    {
        U32((uint)v.Length);
        foreach (var x in v)
            Bool(x);
    }
}

/// <summary>Reads state fields, refusing anything that runs past the end.</summary>
public sealed class StateReader(ReadOnlyMemory<byte> data, string what)
{
    private int _pos;

    /// <summary>Bytes not yet read.</summary>
    public int Remaining => data.Length - _pos;

    private ReadOnlySpan<byte> Take(int n)
    {
        if (n < 0 || n > Remaining)
            throw new InvalidSnapshotException($"{what}: record truncated (needs {n} more bytes, {Remaining} left)");
        var s = data.Span.Slice(_pos, n);
        _pos += n;
        return s;
    }

    /// <summary>Reads a byte.</summary>
    public byte U8() => Take(1)[0];

    /// <summary>Reads a boolean; anything but 0 or 1 is corruption.</summary>
    public bool Bool() => U8() switch
    {
        0 => false,
        1 => true,
        var b => throw new InvalidSnapshotException($"{what}: invalid boolean {b}"),
    };

    /// <summary>Reads a 32-bit value.</summary>
    public uint U32() => BinaryPrimitives.ReadUInt32LittleEndian(Take(4));

    /// <summary>Reads a 64-bit value.</summary>
    public ulong U64() => BinaryPrimitives.ReadUInt64LittleEndian(Take(8));

    /// <summary>Reads a signed 64-bit value.</summary>
    public long I64() => (long)U64();

    private int Count(int elementSize)
    {
        uint n = U32();
        if (n > (uint)(Remaining / elementSize))
            throw new InvalidSnapshotException($"{what}: array of {n} elements does not fit in the record");
        return (int)n;
    }

    /// <summary>Reads a length-prefixed byte string.</summary>
    public byte[] Bytes() => Take(Count(1)).ToArray();

    /// <summary>Reads a length-prefixed UTF-8 string.</summary>
    public string String() => Encoding.UTF8.GetString(Bytes());

    /// <summary>Reads a length-prefixed array of 64-bit values.</summary>
    public ulong[] U64s()
    {
        var a = new ulong[Count(8)];
        for (int i = 0; i < a.Length; i++)
            a[i] = U64();
        return a;
    }

    /// <summary>Reads a length-prefixed array of 32-bit values.</summary>
    public uint[] U32s()
    {
        var a = new uint[Count(4)];
        for (int i = 0; i < a.Length; i++)
            a[i] = U32();
        return a;
    }

    /// <summary>Reads a length-prefixed array of signed 64-bit values.</summary>
    public long[] I64s()
    {
        var a = new long[Count(8)];
        for (int i = 0; i < a.Length; i++)
            a[i] = I64();
        return a;
    }

    /// <summary>Reads a length-prefixed array of booleans.</summary>
    public bool[] Bools()
    {
        var a = new bool[Count(1)];
        for (int i = 0; i < a.Length; i++)
            a[i] = Bool();
        return a;
    }

    /// <summary>Fails unless every byte was consumed.</summary>
    public void End()
    {
        if (Remaining != 0)
            throw new InvalidSnapshotException($"{what}: {Remaining} unexpected trailing bytes");
    }
}
