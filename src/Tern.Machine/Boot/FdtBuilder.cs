// Writes a flattened device tree blob (Devicetree Specification v0.4, chapter 5): header,
// an empty memory-reservation block, the structure block and the strings block, all
// big-endian. Nodes are opened and closed in order; properties go to the open node.
using System.Buffers.Binary;
using System.Text;

namespace Tern.Machine.Boot;

/// <summary>Builds a DTB.</summary>
public sealed class FdtBuilder
{
    private const uint Magic = 0xD00DFEED;
    private const uint BeginNode = 1, EndNode = 2, Prop = 3, End = 9;
    private readonly List<byte> _structure = [];
    private readonly List<byte> _strings = [];
    private readonly Dictionary<string, int> _stringOffsets = new(StringComparer.Ordinal);
    private int _depth;
    private uint _nextPhandle = 1;

    /// <summary>Hands out a new phandle value.</summary>
    public uint NewPhandle() => _nextPhandle++;

    /// <summary>Opens a node (the root node has the empty name).</summary>
    public FdtBuilder Begin(string name)
    {
        Token(BeginNode);
        WritePadded(Encoding.ASCII.GetBytes(name + "\0"));
        _depth++;
        return this;
    }

    /// <summary>Closes the innermost open node.</summary>
    public FdtBuilder EndNodeScope()
    {
        if (_depth == 0)
            throw new InvalidOperationException("no open node to close");
        Token(EndNode);
        _depth--;
        return this;
    }

    /// <summary>A property with raw bytes.</summary>
    public FdtBuilder Property(string name, ReadOnlySpan<byte> value)
    {
        if (_depth == 0)
            throw new InvalidOperationException($"property '{name}' outside any node");
        Token(Prop);
        Token((uint)value.Length);
        Token((uint)StringOffset(name));
        WritePadded(value);
        return this;
    }

    /// <summary>An empty (boolean) property.</summary>
    public FdtBuilder Property(string name) => Property(name, []);

    /// <summary>A property of 32-bit cells.</summary>
    public FdtBuilder Cells(string name, params uint[] cells)
    {
        var b = new byte[cells.Length * 4];
        for (int i = 0; i < cells.Length; i++)
            BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(i * 4), cells[i]);
        return Property(name, b);
    }

    /// <summary>A 64-bit property (two cells).</summary>
    public FdtBuilder U64(string name, ulong value) => Cells(name, (uint)(value >> 32), (uint)value);

    /// <summary>A property of (address, size) pairs with two cells each.</summary>
    public FdtBuilder Reg(ulong address, ulong size) =>
        Cells("reg", (uint)(address >> 32), (uint)address, (uint)(size >> 32), (uint)size);

    /// <summary>A string-list property.</summary>
    public FdtBuilder Strings(string name, params string[] values) =>
        Property(name, Encoding.ASCII.GetBytes(string.Concat(values.Select(v => v + "\0"))));

    /// <summary>Finishes the blob. All nodes must be closed.</summary>
    public byte[] Finish(uint bootCpu = 0)
    {
        if (_depth != 0)
            throw new InvalidOperationException($"{_depth} node(s) still open");
        Token(End);
        const int headerSize = 40;
        int rsvOff = headerSize;
        int structOff = rsvOff + 16; // one terminating (0, 0) reservation entry
        int stringsOff = structOff + (int)_structure.Count;
        int total = stringsOff + (int)_strings.Count;
        var blob = new byte[(total + 7) & ~7];
        var h = blob.AsSpan();
        BinaryPrimitives.WriteUInt32BigEndian(h, Magic);
        BinaryPrimitives.WriteUInt32BigEndian(h[4..], (uint)blob.Length);
        BinaryPrimitives.WriteUInt32BigEndian(h[8..], (uint)structOff);
        BinaryPrimitives.WriteUInt32BigEndian(h[12..], (uint)stringsOff);
        BinaryPrimitives.WriteUInt32BigEndian(h[16..], (uint)rsvOff);
        BinaryPrimitives.WriteUInt32BigEndian(h[20..], 17);
        BinaryPrimitives.WriteUInt32BigEndian(h[24..], 16);
        BinaryPrimitives.WriteUInt32BigEndian(h[28..], bootCpu);
        BinaryPrimitives.WriteUInt32BigEndian(h[32..], (uint)_strings.Count);
        BinaryPrimitives.WriteUInt32BigEndian(h[36..], (uint)_structure.Count);
        _structure.ToArray().CopyTo(blob, structOff);
        _strings.ToArray().CopyTo(blob, stringsOff);
        return blob;
    }

    private int StringOffset(string name)
    {
        if (!_stringOffsets.TryGetValue(name, out int off))
        {
            off = (int)_strings.Count;
            _strings.AddRange(Encoding.ASCII.GetBytes(name + "\0"));
            _stringOffsets[name] = off;
        }
        return off;
    }

    private void Token(uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(b, value);
        _structure.AddRange(b);
    }

    private void WritePadded(ReadOnlySpan<byte> data)
    {
        _structure.AddRange(data);
        int pad = (4 - (data.Length % 4)) % 4;
        for (int i = 0; i < pad; i++)
            _structure.Add(0);
    }
}
