// Instruction decoding. The 32-bit encodings are one declarative table, a line per
// instruction, written as the bit patterns of the ISA manual; compressed instructions are
// expanded to their 32-bit equivalents first, so both forms share one decode and one
// implementation.
namespace Tern.Riscv;

/// <summary>Decodes RV64GC instructions into <see cref="Insn"/>.</summary>
public static class Decoder
{
    /// <summary>Index of the sink register that absorbs integer writes to x0.</summary>
    public const byte Sink = 32;

    private enum F : byte
    {
        None,   // no operands
        R,      // rd, rs1, rs2 (integer)
        I,      // rd, rs1, imm12
        S,      // rs1, rs2, store imm12
        B,      // rs1, rs2, branch imm13
        U,      // rd, imm[31:12]
        J,      // rd, jump imm21
        Sh6,    // rd, rs1, shamt[5:0]
        Sh5,    // rd, rs1, shamt[4:0]
        Csr,    // rd, rs1, csr
        CsrI,   // rd, uimm5 (in rs1), csr
        Amo,    // rd, rs1, rs2 (aq/rl ignored: one hart runs at a time)
        Fr,     // frd, frs1, frs2, rm
        Fr4,    // frd, frs1, frs2, frs3, rm
        FLoad,  // frd, rs1, imm12
        FStore, // rs1, frs2, store imm12
        FToX,   // rd (integer), frs1, frs2, rm
        XToF,   // frd, rs1 (integer), rm
        Sfence, // rs1, rs2
    }

    private readonly record struct Entry(uint Mask, uint Match, Op Op, F Format);

    // Bit patterns from bit 31 down to bit 0; '-' is a field. Spaces are only for alignment.
    private static readonly (string Pattern, Op Op, F Format)[] Table =
    [
        ("------- ----- ----- --- ----- 0110111", Op.Lui, F.U),
        ("------- ----- ----- --- ----- 0010111", Op.Auipc, F.U),
        ("------- ----- ----- --- ----- 1101111", Op.Jal, F.J),
        ("------- ----- ----- 000 ----- 1100111", Op.Jalr, F.I),
        ("------- ----- ----- 000 ----- 1100011", Op.Beq, F.B),
        ("------- ----- ----- 001 ----- 1100011", Op.Bne, F.B),
        ("------- ----- ----- 100 ----- 1100011", Op.Blt, F.B),
        ("------- ----- ----- 101 ----- 1100011", Op.Bge, F.B),
        ("------- ----- ----- 110 ----- 1100011", Op.Bltu, F.B),
        ("------- ----- ----- 111 ----- 1100011", Op.Bgeu, F.B),
        ("------- ----- ----- 000 ----- 0000011", Op.Lb, F.I),
        ("------- ----- ----- 001 ----- 0000011", Op.Lh, F.I),
        ("------- ----- ----- 010 ----- 0000011", Op.Lw, F.I),
        ("------- ----- ----- 011 ----- 0000011", Op.Ld, F.I),
        ("------- ----- ----- 100 ----- 0000011", Op.Lbu, F.I),
        ("------- ----- ----- 101 ----- 0000011", Op.Lhu, F.I),
        ("------- ----- ----- 110 ----- 0000011", Op.Lwu, F.I),
        ("------- ----- ----- 000 ----- 0100011", Op.Sb, F.S),
        ("------- ----- ----- 001 ----- 0100011", Op.Sh, F.S),
        ("------- ----- ----- 010 ----- 0100011", Op.Sw, F.S),
        ("------- ----- ----- 011 ----- 0100011", Op.Sd, F.S),
        ("------- ----- ----- 000 ----- 0010011", Op.Addi, F.I),
        ("------- ----- ----- 010 ----- 0010011", Op.Slti, F.I),
        ("------- ----- ----- 011 ----- 0010011", Op.Sltiu, F.I),
        ("------- ----- ----- 100 ----- 0010011", Op.Xori, F.I),
        ("------- ----- ----- 110 ----- 0010011", Op.Ori, F.I),
        ("------- ----- ----- 111 ----- 0010011", Op.Andi, F.I),
        ("000000- ----- ----- 001 ----- 0010011", Op.Slli, F.Sh6),
        ("000000- ----- ----- 101 ----- 0010011", Op.Srli, F.Sh6),
        ("010000- ----- ----- 101 ----- 0010011", Op.Srai, F.Sh6),
        ("0000000 ----- ----- 000 ----- 0110011", Op.Add, F.R),
        ("0100000 ----- ----- 000 ----- 0110011", Op.Sub, F.R),
        ("0000000 ----- ----- 001 ----- 0110011", Op.Sll, F.R),
        ("0000000 ----- ----- 010 ----- 0110011", Op.Slt, F.R),
        ("0000000 ----- ----- 011 ----- 0110011", Op.Sltu, F.R),
        ("0000000 ----- ----- 100 ----- 0110011", Op.Xor, F.R),
        ("0000000 ----- ----- 101 ----- 0110011", Op.Srl, F.R),
        ("0100000 ----- ----- 101 ----- 0110011", Op.Sra, F.R),
        ("0000000 ----- ----- 110 ----- 0110011", Op.Or, F.R),
        ("0000000 ----- ----- 111 ----- 0110011", Op.And, F.R),
        ("------- ----- ----- 000 ----- 0011011", Op.Addiw, F.I),
        ("0000000 ----- ----- 001 ----- 0011011", Op.Slliw, F.Sh5),
        ("0000000 ----- ----- 101 ----- 0011011", Op.Srliw, F.Sh5),
        ("0100000 ----- ----- 101 ----- 0011011", Op.Sraiw, F.Sh5),
        ("0000000 ----- ----- 000 ----- 0111011", Op.Addw, F.R),
        ("0100000 ----- ----- 000 ----- 0111011", Op.Subw, F.R),
        ("0000000 ----- ----- 001 ----- 0111011", Op.Sllw, F.R),
        ("0000000 ----- ----- 101 ----- 0111011", Op.Srlw, F.R),
        ("0100000 ----- ----- 101 ----- 0111011", Op.Sraw, F.R),
        ("------- ----- ----- 000 ----- 0001111", Op.Fence, F.None),
        ("------- ----- ----- 001 ----- 0001111", Op.FenceI, F.None),
        ("0000000 00000 00000 000 00000 1110011", Op.Ecall, F.None),
        ("0000000 00001 00000 000 00000 1110011", Op.Ebreak, F.None),
        ("0011000 00010 00000 000 00000 1110011", Op.Mret, F.None),
        ("0001000 00010 00000 000 00000 1110011", Op.Sret, F.None),
        ("0001000 00101 00000 000 00000 1110011", Op.Wfi, F.None),
        ("0001001 ----- ----- 000 00000 1110011", Op.SfenceVma, F.Sfence),
        ("------- ----- ----- 001 ----- 1110011", Op.Csrrw, F.Csr),
        ("------- ----- ----- 010 ----- 1110011", Op.Csrrs, F.Csr),
        ("------- ----- ----- 011 ----- 1110011", Op.Csrrc, F.Csr),
        ("------- ----- ----- 101 ----- 1110011", Op.Csrrwi, F.CsrI),
        ("------- ----- ----- 110 ----- 1110011", Op.Csrrsi, F.CsrI),
        ("------- ----- ----- 111 ----- 1110011", Op.Csrrci, F.CsrI),

        ("0000001 ----- ----- 000 ----- 0110011", Op.Mul, F.R),
        ("0000001 ----- ----- 001 ----- 0110011", Op.Mulh, F.R),
        ("0000001 ----- ----- 010 ----- 0110011", Op.Mulhsu, F.R),
        ("0000001 ----- ----- 011 ----- 0110011", Op.Mulhu, F.R),
        ("0000001 ----- ----- 100 ----- 0110011", Op.Div, F.R),
        ("0000001 ----- ----- 101 ----- 0110011", Op.Divu, F.R),
        ("0000001 ----- ----- 110 ----- 0110011", Op.Rem, F.R),
        ("0000001 ----- ----- 111 ----- 0110011", Op.Remu, F.R),
        ("0000001 ----- ----- 000 ----- 0111011", Op.Mulw, F.R),
        ("0000001 ----- ----- 100 ----- 0111011", Op.Divw, F.R),
        ("0000001 ----- ----- 101 ----- 0111011", Op.Divuw, F.R),
        ("0000001 ----- ----- 110 ----- 0111011", Op.Remw, F.R),
        ("0000001 ----- ----- 111 ----- 0111011", Op.Remuw, F.R),

        ("00010-- 00000 ----- 010 ----- 0101111", Op.LrW, F.Amo),
        ("00011-- ----- ----- 010 ----- 0101111", Op.ScW, F.Amo),
        ("00001-- ----- ----- 010 ----- 0101111", Op.AmoswapW, F.Amo),
        ("00000-- ----- ----- 010 ----- 0101111", Op.AmoaddW, F.Amo),
        ("00100-- ----- ----- 010 ----- 0101111", Op.AmoxorW, F.Amo),
        ("01100-- ----- ----- 010 ----- 0101111", Op.AmoandW, F.Amo),
        ("01000-- ----- ----- 010 ----- 0101111", Op.AmoorW, F.Amo),
        ("10000-- ----- ----- 010 ----- 0101111", Op.AmominW, F.Amo),
        ("10100-- ----- ----- 010 ----- 0101111", Op.AmomaxW, F.Amo),
        ("11000-- ----- ----- 010 ----- 0101111", Op.AmominuW, F.Amo),
        ("11100-- ----- ----- 010 ----- 0101111", Op.AmomaxuW, F.Amo),
        ("00010-- 00000 ----- 011 ----- 0101111", Op.LrD, F.Amo),
        ("00011-- ----- ----- 011 ----- 0101111", Op.ScD, F.Amo),
        ("00001-- ----- ----- 011 ----- 0101111", Op.AmoswapD, F.Amo),
        ("00000-- ----- ----- 011 ----- 0101111", Op.AmoaddD, F.Amo),
        ("00100-- ----- ----- 011 ----- 0101111", Op.AmoxorD, F.Amo),
        ("01100-- ----- ----- 011 ----- 0101111", Op.AmoandD, F.Amo),
        ("01000-- ----- ----- 011 ----- 0101111", Op.AmoorD, F.Amo),
        ("10000-- ----- ----- 011 ----- 0101111", Op.AmominD, F.Amo),
        ("10100-- ----- ----- 011 ----- 0101111", Op.AmomaxD, F.Amo),
        ("11000-- ----- ----- 011 ----- 0101111", Op.AmominuD, F.Amo),
        ("11100-- ----- ----- 011 ----- 0101111", Op.AmomaxuD, F.Amo),

        ("------- ----- ----- 010 ----- 0000111", Op.Flw, F.FLoad),
        ("------- ----- ----- 010 ----- 0100111", Op.Fsw, F.FStore),
        ("-----00 ----- ----- --- ----- 1000011", Op.FmaddS, F.Fr4),
        ("-----00 ----- ----- --- ----- 1000111", Op.FmsubS, F.Fr4),
        ("-----00 ----- ----- --- ----- 1001011", Op.FnmsubS, F.Fr4),
        ("-----00 ----- ----- --- ----- 1001111", Op.FnmaddS, F.Fr4),
        ("0000000 ----- ----- --- ----- 1010011", Op.FaddS, F.Fr),
        ("0000100 ----- ----- --- ----- 1010011", Op.FsubS, F.Fr),
        ("0001000 ----- ----- --- ----- 1010011", Op.FmulS, F.Fr),
        ("0001100 ----- ----- --- ----- 1010011", Op.FdivS, F.Fr),
        ("0101100 00000 ----- --- ----- 1010011", Op.FsqrtS, F.Fr),
        ("0010000 ----- ----- 000 ----- 1010011", Op.FsgnjS, F.Fr),
        ("0010000 ----- ----- 001 ----- 1010011", Op.FsgnjnS, F.Fr),
        ("0010000 ----- ----- 010 ----- 1010011", Op.FsgnjxS, F.Fr),
        ("0010100 ----- ----- 000 ----- 1010011", Op.FminS, F.Fr),
        ("0010100 ----- ----- 001 ----- 1010011", Op.FmaxS, F.Fr),
        ("1100000 00000 ----- --- ----- 1010011", Op.FcvtWS, F.FToX),
        ("1100000 00001 ----- --- ----- 1010011", Op.FcvtWuS, F.FToX),
        ("1100000 00010 ----- --- ----- 1010011", Op.FcvtLS, F.FToX),
        ("1100000 00011 ----- --- ----- 1010011", Op.FcvtLuS, F.FToX),
        ("1110000 00000 ----- 000 ----- 1010011", Op.FmvXW, F.FToX),
        ("1010000 ----- ----- 010 ----- 1010011", Op.FeqS, F.FToX),
        ("1010000 ----- ----- 001 ----- 1010011", Op.FltS, F.FToX),
        ("1010000 ----- ----- 000 ----- 1010011", Op.FleS, F.FToX),
        ("1110000 00000 ----- 001 ----- 1010011", Op.FclassS, F.FToX),
        ("1101000 00000 ----- --- ----- 1010011", Op.FcvtSW, F.XToF),
        ("1101000 00001 ----- --- ----- 1010011", Op.FcvtSWu, F.XToF),
        ("1101000 00010 ----- --- ----- 1010011", Op.FcvtSL, F.XToF),
        ("1101000 00011 ----- --- ----- 1010011", Op.FcvtSLu, F.XToF),
        ("1111000 00000 ----- 000 ----- 1010011", Op.FmvWX, F.XToF),

        ("------- ----- ----- 011 ----- 0000111", Op.Fld, F.FLoad),
        ("------- ----- ----- 011 ----- 0100111", Op.Fsd, F.FStore),
        ("-----01 ----- ----- --- ----- 1000011", Op.FmaddD, F.Fr4),
        ("-----01 ----- ----- --- ----- 1000111", Op.FmsubD, F.Fr4),
        ("-----01 ----- ----- --- ----- 1001011", Op.FnmsubD, F.Fr4),
        ("-----01 ----- ----- --- ----- 1001111", Op.FnmaddD, F.Fr4),
        ("0000001 ----- ----- --- ----- 1010011", Op.FaddD, F.Fr),
        ("0000101 ----- ----- --- ----- 1010011", Op.FsubD, F.Fr),
        ("0001001 ----- ----- --- ----- 1010011", Op.FmulD, F.Fr),
        ("0001101 ----- ----- --- ----- 1010011", Op.FdivD, F.Fr),
        ("0101101 00000 ----- --- ----- 1010011", Op.FsqrtD, F.Fr),
        ("0010001 ----- ----- 000 ----- 1010011", Op.FsgnjD, F.Fr),
        ("0010001 ----- ----- 001 ----- 1010011", Op.FsgnjnD, F.Fr),
        ("0010001 ----- ----- 010 ----- 1010011", Op.FsgnjxD, F.Fr),
        ("0010101 ----- ----- 000 ----- 1010011", Op.FminD, F.Fr),
        ("0010101 ----- ----- 001 ----- 1010011", Op.FmaxD, F.Fr),
        ("0100000 00001 ----- --- ----- 1010011", Op.FcvtSD, F.Fr),
        ("0100001 00000 ----- --- ----- 1010011", Op.FcvtDS, F.Fr),
        ("1100001 00000 ----- --- ----- 1010011", Op.FcvtWD, F.FToX),
        ("1100001 00001 ----- --- ----- 1010011", Op.FcvtWuD, F.FToX),
        ("1100001 00010 ----- --- ----- 1010011", Op.FcvtLD, F.FToX),
        ("1100001 00011 ----- --- ----- 1010011", Op.FcvtLuD, F.FToX),
        ("1110001 00000 ----- 000 ----- 1010011", Op.FmvXD, F.FToX),
        ("1010001 ----- ----- 010 ----- 1010011", Op.FeqD, F.FToX),
        ("1010001 ----- ----- 001 ----- 1010011", Op.FltD, F.FToX),
        ("1010001 ----- ----- 000 ----- 1010011", Op.FleD, F.FToX),
        ("1110001 00000 ----- 001 ----- 1010011", Op.FclassD, F.FToX),
        ("1101001 00000 ----- --- ----- 1010011", Op.FcvtDW, F.XToF),
        ("1101001 00001 ----- --- ----- 1010011", Op.FcvtDWu, F.XToF),
        ("1101001 00010 ----- --- ----- 1010011", Op.FcvtDL, F.XToF),
        ("1101001 00011 ----- --- ----- 1010011", Op.FcvtDLu, F.XToF),
        ("1111001 00000 ----- 000 ----- 1010011", Op.FmvDX, F.XToF),
    ];

    // Entries bucketed by major opcode (bits 6:2) so a decode scans only a handful of lines.
    private static readonly Entry[][] Buckets = BuildBuckets();

    private static Entry[][] BuildBuckets()
    {
        var lists = new List<Entry>[32];
        for (int i = 0; i < 32; i++)
            lists[i] = [];
        foreach (var (pattern, op, format) in Table)
        {
            string bits = pattern.Replace(" ", "", StringComparison.Ordinal);
            if (bits.Length != 32)
                throw new InvalidOperationException($"Decode pattern for {op} has {bits.Length} bits.");
            uint mask = 0, match = 0;
            for (int i = 0; i < 32; i++)
            {
                uint bit = 1u << (31 - i);
                if (bits[i] == '-')
                    continue;
                mask |= bit;
                if (bits[i] == '1')
                    match |= bit;
            }
            lists[(match >> 2) & 31].Add(new Entry(mask, match, op, format));
        }
        return Array.ConvertAll(lists, l => l.ToArray());
    }

    /// <summary>Every line of the decode table as (mask, match, operation).</summary>
    internal static IEnumerable<(uint Mask, uint Match, Op Op)> Lines =>
        Buckets.SelectMany(b => b).Select(e => (e.Mask, e.Match, e.Op));

    /// <summary>How many lines of the decode table match a 32-bit word (0 or 1 for an unambiguous table).</summary>
    internal static int MatchCount(uint raw)
    {
        int n = 0;
        foreach (var e in Buckets[(raw >> 2) & 31])
        {
            if ((raw & e.Mask) == e.Match)
                n++;
        }
        return n;
    }

    /// <summary>True when the low bits of a parcel say the instruction is 32 bits long.</summary>
    public static bool IsFullLength(uint lowParcel) => (lowParcel & 3) == 3;

    /// <summary>Decodes a 32-bit instruction or a 16-bit compressed one (given in the low half).</summary>
    public static Insn Decode(uint raw)
    {
        if ((raw & 3) != 3)
        {
            uint c = raw & 0xFFFF;
            uint expanded = Compressed.Expand((ushort)c);
            Insn d = expanded == 0 ? Illegal(c) : Decode32(expanded);
            d.Length = 2;
            d.Raw = c;
            return d;
        }
        return Decode32(raw);
    }

    private static Insn Illegal(uint raw) => new() { Op = Op.Illegal, Raw = raw, Length = 4 };

    private static Insn Decode32(uint raw)
    {
        if ((raw & 3) != 3)
            return Illegal(raw);
        foreach (var e in Buckets[(raw >> 2) & 31])
        {
            if ((raw & e.Mask) == e.Match)
                return Fields(raw, e.Op, e.Format);
        }
        return Illegal(raw);
    }

    private static Insn Fields(uint raw, Op op, F format)
    {
        byte rd = (byte)((raw >> 7) & 31);
        byte rs1 = (byte)((raw >> 15) & 31);
        byte rs2 = (byte)((raw >> 20) & 31);
        byte rs3 = (byte)(raw >> 27);
        byte rm = (byte)((raw >> 12) & 7);
        int immI = (int)raw >> 20;
        var d = new Insn { Op = op, Raw = raw, Length = 4 };
        byte intRd = rd == 0 ? Sink : rd;
        switch (format)
        {
            case F.None:
                break;
            case F.R:
            case F.Amo:
                d.Rd = intRd; d.Rs1 = rs1; d.Rs2 = rs2;
                break;
            case F.I:
                d.Rd = intRd; d.Rs1 = rs1; d.Imm = immI;
                break;
            case F.S:
                d.Rs1 = rs1; d.Rs2 = rs2; d.Imm = StoreImm(raw);
                break;
            case F.B:
                d.Rs1 = rs1; d.Rs2 = rs2;
                d.Imm = (((int)raw >> 31) << 12) | (int)(((raw >> 7) & 1) << 11) | (int)(((raw >> 25) & 0x3F) << 5) | (int)(((raw >> 8) & 0xF) << 1);
                break;
            case F.U:
                d.Rd = intRd; d.Imm = (int)(raw & 0xFFFFF000);
                break;
            case F.J:
                d.Rd = intRd;
                d.Imm = (((int)raw >> 31) << 20) | (int)(raw & 0xFF000) | (int)(((raw >> 20) & 1) << 11) | (int)(((raw >> 21) & 0x3FF) << 1);
                break;
            case F.Sh6:
                d.Rd = intRd; d.Rs1 = rs1; d.Imm = (int)((raw >> 20) & 63);
                break;
            case F.Sh5:
                d.Rd = intRd; d.Rs1 = rs1; d.Imm = (int)((raw >> 20) & 31);
                break;
            case F.Csr:
            case F.CsrI:
                // Rm carries the two "no side effect" conditions: bit 0 = rd is x0 (csrrw does
                // not read), bit 1 = rs1/uimm is 0 (csrrs/csrrc do not write).
                d.Rd = intRd; d.Rs1 = rs1; d.Imm = (int)(raw >> 20);
                d.Rm = (byte)((rd == 0 ? 1 : 0) | (rs1 == 0 ? 2 : 0));
                break;
            case F.Fr:
            case F.Fr4:
                if (rm is 5 or 6)
                    return Illegal(raw);
                d.Rd = rd; d.Rs1 = rs1; d.Rs2 = rs2; d.Rs3 = rs3; d.Rm = rm;
                break;
            case F.FLoad:
                d.Rd = rd; d.Rs1 = rs1; d.Imm = immI;
                break;
            case F.FStore:
                d.Rs1 = rs1; d.Rs2 = rs2; d.Imm = StoreImm(raw);
                break;
            case F.FToX:
                if (rm is 5 or 6 && op is Op.FcvtWS or Op.FcvtWuS or Op.FcvtLS or Op.FcvtLuS or Op.FcvtWD or Op.FcvtWuD or Op.FcvtLD or Op.FcvtLuD)
                    return Illegal(raw);
                d.Rd = intRd; d.Rs1 = rs1; d.Rs2 = rs2; d.Rm = rm;
                break;
            case F.XToF:
                if (rm is 5 or 6 && op is not (Op.FmvWX or Op.FmvDX))
                    return Illegal(raw);
                d.Rd = rd; d.Rs1 = rs1; d.Rm = rm;
                break;
            case F.Sfence:
                d.Rs1 = rs1; d.Rs2 = rs2;
                break;
        }
        return d;
    }

    private static int StoreImm(uint raw) => (((int)raw >> 25) << 5) | (int)((raw >> 7) & 31);

    /// <summary>True when an operation ends a block: it may change pc, privilege, translation or interrupt state.</summary>
    public static bool EndsBlock(Op op) => op switch
    {
        Op.Jal or Op.Jalr or Op.Beq or Op.Bne or Op.Blt or Op.Bge or Op.Bltu or Op.Bgeu => true,
        Op.Ecall or Op.Ebreak or Op.Mret or Op.Sret or Op.Wfi or Op.SfenceVma or Op.FenceI => true,
        Op.Csrrw or Op.Csrrs or Op.Csrrc or Op.Csrrwi or Op.Csrrsi or Op.Csrrci => true,
        Op.Illegal => true,
        _ => false,
    };
}
