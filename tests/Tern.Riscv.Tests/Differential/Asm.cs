// A minimal two-pass assembler buffer: emits Encoded instructions and raw data, with labels
// and fixups for branches, jal and auipc+addi address loads. Used for the fixed parts of a
// differential-test image (entry, per-sequence setup and save, dump routine, data).
namespace Tern.Riscv.Tests.Differential;

/// <summary>A position in an <see cref="Asm"/> buffer, bound once.</summary>
internal sealed class Label
{
    public int Offset { get; set; } = -1;
}

/// <summary>Assembler buffer for code and data at a fixed load address.</summary>
internal sealed class Asm(ulong baseAddress)
{
    private readonly List<byte> _bytes = [];
    private readonly List<(int At, Label Target, int Addend, Func<int, Encoded[]> Encode)> _fixups = [];

    public ulong BaseAddress { get; } = baseAddress;

    /// <summary>Current offset from the base address.</summary>
    public int Offset => _bytes.Count;

    public ulong Pc => BaseAddress + (ulong)_bytes.Count;

    public static Label NewLabel() => new();

    public void Bind(Label label)
    {
        if (label.Offset >= 0)
        {
            throw new InvalidOperationException("label bound twice");
        }

        label.Offset = Offset;
    }

    public void Emit(Encoded e)
    {
        _bytes.Add((byte)e.Bits);
        _bytes.Add((byte)(e.Bits >> 8));
        if (e.Length == 4)
        {
            _bytes.Add((byte)(e.Bits >> 16));
            _bytes.Add((byte)(e.Bits >> 24));
        }
    }

    public void U8(byte b) => _bytes.Add(b);

    public void U64(ulong v)
    {
        for (int i = 0; i < 8; i++)
        {
            _bytes.Add((byte)(v >> (8 * i)));
        }
    }

    public void Data(ReadOnlySpan<byte> data)
    {
        foreach (byte b in data)
        {
            _bytes.Add(b);
        }
    }

    /// <summary>Pads with zero bytes up to a multiple of <paramref name="alignment"/>.</summary>
    public void Align(int alignment)
    {
        while (_bytes.Count % alignment != 0)
        {
            _bytes.Add(0);
        }
    }

    private void Fixup(Label target, int addend, int length, Func<int, Encoded[]> encode)
    {
        _fixups.Add((Offset, target, addend, encode));
        for (int i = 0; i < length; i++)
        {
            _bytes.Add(0);
        }
    }

    public void Branch(string name, int rs1, int rs2, Label target) =>
        Fixup(target, 0, 4, rel => [Rv.Branch(name, rs1, rs2, rel)]);

    public void Jal(int rd, Label target) => Fixup(target, 0, 4, rel => [Rv.Jal(rd, rel)]);

    public void J(Label target) => Jal(0, target);

    /// <summary>rd = address of <paramref name="target"/> + <paramref name="addend"/> (auipc + addi).</summary>
    public void La(int rd, Label target, int addend = 0) => Fixup(target, addend, 8, rel =>
    {
        int hi = (rel + 0x800) >> 12;
        int lo = rel - (hi << 12);
        return [Rv.Auipc(rd, hi & 0xFFFFF), Rv.Addi(rd, rd, lo)];
    });

    /// <summary>rd = a sign-extended 32-bit constant (lui + addiw, or addi alone).</summary>
    public void Li(int rd, int value)
    {
        if (value is >= -2048 and <= 2047)
        {
            Emit(Rv.Addi(rd, 0, value));
            return;
        }

        int hi = (int)(((long)value + 0x800) >> 12);
        int lo = value - (hi << 12);
        Emit(Rv.Lui(rd, hi & 0xFFFFF));
        if (lo != 0)
        {
            Emit(Rv.AluI("addiw", rd, rd, lo));
        }
    }

    public void Ret() => Emit(Rv.Jalr(0, 1, 0));

    /// <summary>Resolves fixups and returns the image.</summary>
    public byte[] Finish()
    {
        byte[] image = [.. _bytes];
        foreach (var (at, target, addend, encode) in _fixups)
        {
            if (target.Offset < 0)
            {
                throw new InvalidOperationException("unbound label");
            }

            int pos = at;
            foreach (Encoded e in encode(target.Offset + addend - at))
            {
                for (int i = 0; i < e.Length; i++)
                {
                    image[pos++] = (byte)(e.Bits >> (8 * i));
                }
            }
        }

        return image;
    }
}
