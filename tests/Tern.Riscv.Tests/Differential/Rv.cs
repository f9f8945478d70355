// A small RISC-V RV64GC instruction encoder: the base formats (R/I/S/B/U/J/R4), the
// compressed formats, and one factory per instruction used by the differential tests. Every
// factory returns the bits plus assembly text, so a failing sequence can be listed.
namespace Tern.Riscv.Tests.Differential;

/// <summary>Rounding modes as encoded in the rm field.</summary>
internal enum RoundingMode
{
    Rne = 0,
    Rtz = 1,
    Rdn = 2,
    Rup = 3,
    Rmm = 4,
    Dyn = 7,
}

/// <summary>Floating-point format field: single or double.</summary>
internal enum FpFormat
{
    S = 0,
    D = 1,
}

/// <summary>RISC-V instruction encoders.</summary>
internal static class Rv
{
    // ---- Opcodes ----
    public const uint OpLoad = 0x03;
    public const uint OpLoadFp = 0x07;
    public const uint OpMiscMem = 0x0F;
    public const uint OpImm = 0x13;
    public const uint OpAuipc = 0x17;
    public const uint OpImm32 = 0x1B;
    public const uint OpStore = 0x23;
    public const uint OpStoreFp = 0x27;
    public const uint OpAmo = 0x2F;
    public const uint OpReg = 0x33;
    public const uint OpLui = 0x37;
    public const uint OpReg32 = 0x3B;
    public const uint OpMadd = 0x43;
    public const uint OpMsub = 0x47;
    public const uint OpNmsub = 0x4B;
    public const uint OpNmadd = 0x4F;
    public const uint OpFp = 0x53;
    public const uint OpBranch = 0x63;
    public const uint OpJalr = 0x67;
    public const uint OpJal = 0x6F;
    public const uint OpSystem = 0x73;

    // ---- CSR numbers ----
    public const int CsrFflags = 0x001;
    public const int CsrFrm = 0x002;
    public const int CsrFcsr = 0x003;
    public const int CsrMstatus = 0x300;
    public const int CsrMtvec = 0x305;
    public const int CsrMepc = 0x341;
    public const int CsrMcause = 0x342;
    public const int CsrMtval = 0x343;

    // ---- Base formats ----

    public static uint RType(uint opcode, int rd, int funct3, int rs1, int rs2, int funct7) =>
        opcode | ((uint)rd << 7) | ((uint)funct3 << 12) | ((uint)rs1 << 15) | ((uint)rs2 << 20) | ((uint)funct7 << 25);

    public static uint IType(uint opcode, int rd, int funct3, int rs1, int imm) =>
        opcode | ((uint)rd << 7) | ((uint)funct3 << 12) | ((uint)rs1 << 15) | (((uint)imm & 0xFFF) << 20);

    public static uint SType(uint opcode, int funct3, int rs1, int rs2, int imm)
    {
        var i = (uint)imm;
        return opcode | ((i & 0x1F) << 7) | ((uint)funct3 << 12) | ((uint)rs1 << 15) | ((uint)rs2 << 20) | (((i >> 5) & 0x7F) << 25);
    }

    public static uint BType(int funct3, int rs1, int rs2, int offset)
    {
        var o = (uint)offset;
        return OpBranch | (((o >> 11) & 1) << 7) | (((o >> 1) & 0xF) << 8) | ((uint)funct3 << 12) | ((uint)rs1 << 15)
            | ((uint)rs2 << 20) | (((o >> 5) & 0x3F) << 25) | (((o >> 12) & 1) << 31);
    }

    public static uint UType(uint opcode, int rd, int imm20) => opcode | ((uint)rd << 7) | (((uint)imm20 & 0xFFFFF) << 12);

    public static uint JType(int rd, int offset)
    {
        var o = (uint)offset;
        return OpJal | ((uint)rd << 7) | (((o >> 12) & 0xFF) << 12) | (((o >> 11) & 1) << 20) | (((o >> 1) & 0x3FF) << 21)
            | (((o >> 20) & 1) << 31);
    }

    public static uint R4Type(uint opcode, int rd, int rm, int rs1, int rs2, int rs3, int fmt) =>
        opcode | ((uint)rd << 7) | ((uint)rm << 12) | ((uint)rs1 << 15) | ((uint)rs2 << 20) | ((uint)fmt << 25) | ((uint)rs3 << 27);

    // ---- Names ----

    public static string X(int r) => "x" + r;

    public static string F(int r) => "f" + r;

    public static string Rm(int rm) => rm switch
    {
        0 => "rne",
        1 => "rtz",
        2 => "rdn",
        3 => "rup",
        4 => "rmm",
        7 => "dyn",
        _ => "rm" + rm,
    };

    private static string Sfx(FpFormat fmt) => fmt == FpFormat.S ? "s" : "d";

    private static void CheckReg(int r)
    {
        if ((uint)r > 31)
        {
            throw new ArgumentOutOfRangeException(nameof(r), r, "register out of range");
        }
    }

    private static void CheckImm(long value, long min, long max, int align = 1)
    {
        if (value < min || value > max || value % align != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(value), value, $"immediate outside [{min}, {max}] or not a multiple of {align}");
        }
    }

    // ---- RV64I ----

    public static readonly string[] AluRNames = ["add", "sub", "sll", "slt", "sltu", "xor", "srl", "sra", "or", "and"];
    public static readonly string[] AluRWNames = ["addw", "subw", "sllw", "srlw", "sraw"];
    public static readonly string[] AluINames = ["addi", "slti", "sltiu", "xori", "ori", "andi"];
    public static readonly string[] MulDivNames = ["mul", "mulh", "mulhsu", "mulhu", "div", "divu", "rem", "remu"];
    public static readonly string[] MulDivWNames = ["mulw", "divw", "divuw", "remw", "remuw"];

    /// <summary>Register-register ALU ops, including M (mul/div/rem) and the *w forms.</summary>
    public static Encoded AluR(string name, int rd, int rs1, int rs2)
    {
        CheckReg(rd);
        CheckReg(rs1);
        CheckReg(rs2);
        (uint opcode, int f3, int f7) = name switch
        {
            "add" => (OpReg, 0, 0),
            "sub" => (OpReg, 0, 0x20),
            "sll" => (OpReg, 1, 0),
            "slt" => (OpReg, 2, 0),
            "sltu" => (OpReg, 3, 0),
            "xor" => (OpReg, 4, 0),
            "srl" => (OpReg, 5, 0),
            "sra" => (OpReg, 5, 0x20),
            "or" => (OpReg, 6, 0),
            "and" => (OpReg, 7, 0),
            "addw" => (OpReg32, 0, 0),
            "subw" => (OpReg32, 0, 0x20),
            "sllw" => (OpReg32, 1, 0),
            "srlw" => (OpReg32, 5, 0),
            "sraw" => (OpReg32, 5, 0x20),
            "mul" => (OpReg, 0, 1),
            "mulh" => (OpReg, 1, 1),
            "mulhsu" => (OpReg, 2, 1),
            "mulhu" => (OpReg, 3, 1),
            "div" => (OpReg, 4, 1),
            "divu" => (OpReg, 5, 1),
            "rem" => (OpReg, 6, 1),
            "remu" => (OpReg, 7, 1),
            "mulw" => (OpReg32, 0, 1),
            "divw" => (OpReg32, 4, 1),
            "divuw" => (OpReg32, 5, 1),
            "remw" => (OpReg32, 6, 1),
            "remuw" => (OpReg32, 7, 1),
            _ => throw new ArgumentException("unknown R-type op " + name, nameof(name)),
        };
        return Encoded.Word(RType(opcode, rd, f3, rs1, rs2, f7), $"{name} {X(rd)}, {X(rs1)}, {X(rs2)}");
    }

    /// <summary>Register-immediate ALU ops (addi, slti, sltiu, xori, ori, andi, addiw).</summary>
    public static Encoded AluI(string name, int rd, int rs1, int imm)
    {
        CheckReg(rd);
        CheckReg(rs1);
        CheckImm(imm, -2048, 2047);
        (uint opcode, int f3) = name switch
        {
            "addi" => (OpImm, 0),
            "slti" => (OpImm, 2),
            "sltiu" => (OpImm, 3),
            "xori" => (OpImm, 4),
            "ori" => (OpImm, 6),
            "andi" => (OpImm, 7),
            "addiw" => (OpImm32, 0),
            _ => throw new ArgumentException("unknown I-type op " + name, nameof(name)),
        };
        return Encoded.Word(IType(opcode, rd, f3, rs1, imm), $"{name} {X(rd)}, {X(rs1)}, {imm}");
    }

    public static Encoded Addi(int rd, int rs1, int imm) => AluI("addi", rd, rs1, imm);

    public static Encoded Nop() => Encoded.Word(IType(OpImm, 0, 0, 0, 0), "nop");

    /// <summary>Shift by immediate: slli/srli/srai (shamt 0..63) and slliw/srliw/sraiw (0..31).</summary>
    public static Encoded ShiftI(string name, int rd, int rs1, int shamt)
    {
        CheckReg(rd);
        CheckReg(rs1);
        bool word = name.EndsWith('w');
        CheckImm(shamt, 0, word ? 31 : 63);
        (int f3, int hi) = name switch
        {
            "slli" or "slliw" => (1, 0),
            "srli" or "srliw" => (5, 0),
            "srai" or "sraiw" => (5, 0x400),
            _ => throw new ArgumentException("unknown shift " + name, nameof(name)),
        };
        return Encoded.Word(IType(word ? OpImm32 : OpImm, rd, f3, rs1, hi | shamt), $"{name} {X(rd)}, {X(rs1)}, {shamt}");
    }

    public static Encoded Lui(int rd, int imm20)
    {
        CheckReg(rd);
        CheckImm(imm20, 0, 0xFFFFF);
        return Encoded.Word(UType(OpLui, rd, imm20), $"lui {X(rd)}, 0x{imm20:x}");
    }

    public static Encoded Auipc(int rd, int imm20)
    {
        CheckReg(rd);
        CheckImm(imm20, 0, 0xFFFFF);
        return Encoded.Word(UType(OpAuipc, rd, imm20), $"auipc {X(rd)}, 0x{imm20:x}");
    }

    public static readonly string[] LoadNames = ["lb", "lh", "lw", "ld", "lbu", "lhu", "lwu"];
    public static readonly string[] StoreNames = ["sb", "sh", "sw", "sd"];

    /// <summary>Access size in bytes of a load or store mnemonic.</summary>
    public static int AccessSize(string name) => name switch
    {
        "lb" or "lbu" or "sb" => 1,
        "lh" or "lhu" or "sh" => 2,
        "lw" or "lwu" or "sw" or "flw" or "fsw" => 4,
        "ld" or "sd" or "fld" or "fsd" => 8,
        _ => throw new ArgumentException("not a load or store: " + name, nameof(name)),
    };

    public static Encoded Load(string name, int rd, int rs1, int offset)
    {
        CheckReg(rd);
        CheckReg(rs1);
        CheckImm(offset, -2048, 2047);
        int f3 = Array.IndexOf(LoadNames, name) switch
        {
            0 => 0,
            1 => 1,
            2 => 2,
            3 => 3,
            4 => 4,
            5 => 5,
            6 => 6,
            _ => throw new ArgumentException("unknown load " + name, nameof(name)),
        };
        return Encoded.Word(IType(OpLoad, rd, f3, rs1, offset), $"{name} {X(rd)}, {offset}({X(rs1)})");
    }

    public static Encoded Store(string name, int rs2, int rs1, int offset)
    {
        CheckReg(rs2);
        CheckReg(rs1);
        CheckImm(offset, -2048, 2047);
        int f3 = Array.IndexOf(StoreNames, name);
        if (f3 < 0)
        {
            throw new ArgumentException("unknown store " + name, nameof(name));
        }

        return Encoded.Word(SType(OpStore, f3, rs1, rs2, offset), $"{name} {X(rs2)}, {offset}({X(rs1)})");
    }

    public static readonly string[] BranchNames = ["beq", "bne", "blt", "bge", "bltu", "bgeu"];

    public static Encoded Branch(string name, int rs1, int rs2, int offset)
    {
        CheckReg(rs1);
        CheckReg(rs2);
        CheckImm(offset, -4096, 4094, 2);
        int f3 = name switch
        {
            "beq" => 0,
            "bne" => 1,
            "blt" => 4,
            "bge" => 5,
            "bltu" => 6,
            "bgeu" => 7,
            _ => throw new ArgumentException("unknown branch " + name, nameof(name)),
        };
        return Encoded.Word(BType(f3, rs1, rs2, offset), $"{name} {X(rs1)}, {X(rs2)}, pc{offset:+0;-0}");
    }

    public static Encoded Jal(int rd, int offset)
    {
        CheckReg(rd);
        CheckImm(offset, -(1 << 20), (1 << 20) - 2, 2);
        return Encoded.Word(JType(rd, offset), $"jal {X(rd)}, pc{offset:+0;-0}");
    }

    public static Encoded Jalr(int rd, int rs1, int offset)
    {
        CheckReg(rd);
        CheckReg(rs1);
        CheckImm(offset, -2048, 2047);
        return Encoded.Word(IType(OpJalr, rd, 0, rs1, offset), $"jalr {X(rd)}, {offset}({X(rs1)})");
    }

    public static Encoded Fence() => Encoded.Word(0x0FF0000F, "fence iorw, iorw");

    public static Encoded FenceI() => Encoded.Word(0x0000100F, "fence.i");

    // ---- Zicsr ----

    public static Encoded Csr(string name, int rd, int csr, int rs1OrUimm)
    {
        CheckReg(rd);
        CheckReg(rs1OrUimm);
        int f3 = name switch
        {
            "csrrw" => 1,
            "csrrs" => 2,
            "csrrc" => 3,
            "csrrwi" => 5,
            "csrrsi" => 6,
            "csrrci" => 7,
            _ => throw new ArgumentException("unknown csr op " + name, nameof(name)),
        };
        string src = f3 >= 5 ? rs1OrUimm.ToString() : X(rs1OrUimm);
        return Encoded.Word(IType(OpSystem, rd, f3, rs1OrUimm, csr), $"{name} {X(rd)}, {CsrName(csr)}, {src}");
    }

    public static string CsrName(int csr) => csr switch
    {
        CsrFflags => "fflags",
        CsrFrm => "frm",
        CsrFcsr => "fcsr",
        CsrMstatus => "mstatus",
        CsrMtvec => "mtvec",
        CsrMepc => "mepc",
        CsrMcause => "mcause",
        CsrMtval => "mtval",
        _ => "0x" + csr.ToString("x3"),
    };

    // ---- A ----

    public static readonly string[] AmoNames = ["amoswap", "amoadd", "amoxor", "amoand", "amoor", "amomin", "amomax", "amominu", "amomaxu"];

    private static int AmoFunct5(string op) => op switch
    {
        "lr" => 0x02,
        "sc" => 0x03,
        "amoswap" => 0x01,
        "amoadd" => 0x00,
        "amoxor" => 0x04,
        "amoand" => 0x0C,
        "amoor" => 0x08,
        "amomin" => 0x10,
        "amomax" => 0x14,
        "amominu" => 0x18,
        "amomaxu" => 0x1C,
        _ => throw new ArgumentException("unknown AMO " + op, nameof(op)),
    };

    /// <summary>An AMO, LR or SC. <paramref name="width"/> is 4 (.w) or 8 (.d); LR ignores rs2.</summary>
    public static Encoded Amo(string op, int width, int rd, int rs1, int rs2, bool aq, bool rl)
    {
        CheckReg(rd);
        CheckReg(rs1);
        CheckReg(rs2);
        if (op == "lr")
        {
            rs2 = 0;
        }

        int f3 = width switch
        {
            4 => 2,
            8 => 3,
            _ => throw new ArgumentOutOfRangeException(nameof(width)),
        };
        int f7 = (AmoFunct5(op) << 2) | (aq ? 2 : 0) | (rl ? 1 : 0);
        string ord = (aq ? ".aq" : "") + (rl ? ".rl" : "");
        string name = $"{op}.{(width == 4 ? "w" : "d")}{ord}";
        string text = op == "lr" ? $"{name} {X(rd)}, ({X(rs1)})" : $"{name} {X(rd)}, {X(rs2)}, ({X(rs1)})";
        return Encoded.Word(RType(OpAmo, rd, f3, rs1, rs2, f7), text);
    }

    // ---- F / D ----

    public static Encoded FLoad(FpFormat fmt, int rd, int rs1, int offset)
    {
        CheckReg(rd);
        CheckReg(rs1);
        CheckImm(offset, -2048, 2047);
        string name = fmt == FpFormat.S ? "flw" : "fld";
        return Encoded.Word(IType(OpLoadFp, rd, fmt == FpFormat.S ? 2 : 3, rs1, offset), $"{name} {F(rd)}, {offset}({X(rs1)})");
    }

    public static Encoded FStore(FpFormat fmt, int rs2, int rs1, int offset)
    {
        CheckReg(rs2);
        CheckReg(rs1);
        CheckImm(offset, -2048, 2047);
        string name = fmt == FpFormat.S ? "fsw" : "fsd";
        return Encoded.Word(SType(OpStoreFp, fmt == FpFormat.S ? 2 : 3, rs1, rs2, offset), $"{name} {F(rs2)}, {offset}({X(rs1)})");
    }

    private static uint OpFpBits(int funct5, FpFormat fmt, int rd, int rm, int rs1, int rs2) =>
        RType(OpFp, rd, rm, rs1, rs2, (funct5 << 2) | (int)fmt);

    public static readonly string[] FpArithNames = ["fadd", "fsub", "fmul", "fdiv"];

    /// <summary>fadd/fsub/fmul/fdiv with a rounding mode.</summary>
    public static Encoded FArith(string name, FpFormat fmt, int rd, int rs1, int rs2, int rm)
    {
        int funct5 = Array.IndexOf(FpArithNames, name);
        if (funct5 < 0)
        {
            throw new ArgumentException("unknown fp op " + name, nameof(name));
        }

        return Encoded.Word(OpFpBits(funct5, fmt, rd, rm, rs1, rs2), $"{name}.{Sfx(fmt)} {F(rd)}, {F(rs1)}, {F(rs2)}, {Rm(rm)}");
    }

    public static Encoded FSqrt(FpFormat fmt, int rd, int rs1, int rm) =>
        Encoded.Word(OpFpBits(0x0B, fmt, rd, rm, rs1, 0), $"fsqrt.{Sfx(fmt)} {F(rd)}, {F(rs1)}, {Rm(rm)}");

    public static readonly string[] FSgnjNames = ["fsgnj", "fsgnjn", "fsgnjx"];

    public static Encoded FSgnj(string name, FpFormat fmt, int rd, int rs1, int rs2)
    {
        int f3 = Array.IndexOf(FSgnjNames, name);
        if (f3 < 0)
        {
            throw new ArgumentException("unknown sign-injection op " + name, nameof(name));
        }

        return Encoded.Word(OpFpBits(0x04, fmt, rd, f3, rs1, rs2), $"{name}.{Sfx(fmt)} {F(rd)}, {F(rs1)}, {F(rs2)}");
    }

    public static Encoded FMinMax(bool max, FpFormat fmt, int rd, int rs1, int rs2) =>
        Encoded.Word(OpFpBits(0x05, fmt, rd, max ? 1 : 0, rs1, rs2), $"{(max ? "fmax" : "fmin")}.{Sfx(fmt)} {F(rd)}, {F(rs1)}, {F(rs2)}");

    public static readonly string[] FCompareNames = ["fle", "flt", "feq"];

    /// <summary>feq/flt/fle: integer rd, float sources.</summary>
    public static Encoded FCompare(string name, FpFormat fmt, int rd, int rs1, int rs2)
    {
        int f3 = Array.IndexOf(FCompareNames, name);
        if (f3 < 0)
        {
            throw new ArgumentException("unknown fp compare " + name, nameof(name));
        }

        return Encoded.Word(OpFpBits(0x14, fmt, rd, f3, rs1, rs2), $"{name}.{Sfx(fmt)} {X(rd)}, {F(rs1)}, {F(rs2)}");
    }

    public static Encoded FClass(FpFormat fmt, int rd, int rs1) =>
        Encoded.Word(OpFpBits(0x1C, fmt, rd, 1, rs1, 0), $"fclass.{Sfx(fmt)} {X(rd)}, {F(rs1)}");

    /// <summary>fmv.x.w / fmv.x.d: float bits to an integer register.</summary>
    public static Encoded FMvToInt(FpFormat fmt, int rd, int rs1) =>
        Encoded.Word(OpFpBits(0x1C, fmt, rd, 0, rs1, 0), $"fmv.x.{(fmt == FpFormat.S ? "w" : "d")} {X(rd)}, {F(rs1)}");

    /// <summary>fmv.w.x / fmv.d.x: integer bits to a float register.</summary>
    public static Encoded FMvFromInt(FpFormat fmt, int rd, int rs1) =>
        Encoded.Word(OpFpBits(0x1E, fmt, rd, 0, rs1, 0), $"fmv.{(fmt == FpFormat.S ? "w" : "d")}.x {F(rd)}, {X(rs1)}");

    public static readonly string[] IntTypeNames = ["w", "wu", "l", "lu"];

    /// <summary>fcvt.{w,wu,l,lu}.{s,d}: float to integer.</summary>
    public static Encoded FCvtToInt(FpFormat fmt, int intType, int rd, int rs1, int rm) =>
        Encoded.Word(OpFpBits(0x18, fmt, rd, rm, rs1, intType), $"fcvt.{IntTypeNames[intType]}.{Sfx(fmt)} {X(rd)}, {F(rs1)}, {Rm(rm)}");

    /// <summary>fcvt.{s,d}.{w,wu,l,lu}: integer to float.</summary>
    public static Encoded FCvtFromInt(FpFormat fmt, int intType, int rd, int rs1, int rm) =>
        Encoded.Word(OpFpBits(0x1A, fmt, rd, rm, rs1, intType), $"fcvt.{Sfx(fmt)}.{IntTypeNames[intType]} {F(rd)}, {X(rs1)}, {Rm(rm)}");

    /// <summary>fcvt.s.d (to single) or fcvt.d.s (to double).</summary>
    public static Encoded FCvtFloat(FpFormat to, int rd, int rs1, int rm) => to == FpFormat.S
        ? Encoded.Word(OpFpBits(0x08, FpFormat.S, rd, rm, rs1, 1), $"fcvt.s.d {F(rd)}, {F(rs1)}, {Rm(rm)}")
        : Encoded.Word(OpFpBits(0x08, FpFormat.D, rd, rm, rs1, 0), $"fcvt.d.s {F(rd)}, {F(rs1)}, {Rm(rm)}");

    public static readonly string[] FmaNames = ["fmadd", "fmsub", "fnmsub", "fnmadd"];

    public static Encoded Fma(string name, FpFormat fmt, int rd, int rs1, int rs2, int rs3, int rm)
    {
        uint opcode = name switch
        {
            "fmadd" => OpMadd,
            "fmsub" => OpMsub,
            "fnmsub" => OpNmsub,
            "fnmadd" => OpNmadd,
            _ => throw new ArgumentException("unknown fma " + name, nameof(name)),
        };
        return Encoded.Word(R4Type(opcode, rd, rm, rs1, rs2, rs3, (int)fmt),
            $"{name}.{Sfx(fmt)} {F(rd)}, {F(rs1)}, {F(rs2)}, {F(rs3)}, {Rm(rm)}");
    }

    // ---- C (RV64C) ----

    /// <summary>True when <paramref name="r"/> is one of x8..x15, addressable by the 3-bit register fields.</summary>
    public static bool IsCReg(int r) => r is >= 8 and <= 15;

    private static uint CReg(int r)
    {
        if (!IsCReg(r))
        {
            throw new ArgumentOutOfRangeException(nameof(r), r, "compressed register must be x8..x15");
        }

        return (uint)(r - 8);
    }

    private static uint Bit(long v, int i) => (uint)((v >> i) & 1);

    private static uint Bits(long v, int hi, int lo) => (uint)((v >> lo) & ((1L << (hi - lo + 1)) - 1));

    /// <summary>c.addi4spn rd', sp, nzuimm (multiple of 4, 4..1020).</summary>
    public static Encoded CAddi4spn(int rd, int nzuimm)
    {
        CheckImm(nzuimm, 4, 1020, 4);
        uint imm = (Bits(nzuimm, 5, 4) << 11) | (Bits(nzuimm, 9, 6) << 7) | (Bit(nzuimm, 2) << 6) | (Bit(nzuimm, 3) << 5);
        return Encoded.Half((0u << 13) | imm | (CReg(rd) << 2) | 0, $"c.addi4spn {X(rd)}, x2, {nzuimm}");
    }

    /// <summary>c.lw / c.ld / c.fld / c.sw / c.sd / c.fsd with a register in x8..x15 as base.</summary>
    public static Encoded CLoadStore(string name, int reg, int rs1, int uimm)
    {
        (uint f3, bool word) = name switch
        {
            "c.fld" => (1u, false),
            "c.lw" => (2u, true),
            "c.ld" => (3u, false),
            "c.fsd" => (5u, false),
            "c.sw" => (6u, true),
            "c.sd" => (7u, false),
            _ => throw new ArgumentException("unknown compressed load/store " + name, nameof(name)),
        };
        uint imm;
        if (word)
        {
            CheckImm(uimm, 0, 124, 4);
            imm = (Bits(uimm, 5, 3) << 10) | (Bit(uimm, 2) << 6) | (Bit(uimm, 6) << 5);
        }
        else
        {
            CheckImm(uimm, 0, 248, 8);
            imm = (Bits(uimm, 5, 3) << 10) | (Bits(uimm, 7, 6) << 5);
        }

        string r = name.StartsWith("c.f", StringComparison.Ordinal) ? F(reg) : X(reg);
        return Encoded.Half((f3 << 13) | imm | (CReg(rs1) << 7) | (CReg(reg) << 2) | 0, $"{name} {r}, {uimm}({X(rs1)})");
    }

    private static uint CiImm6(int imm) => (Bit(imm, 5) << 12) | (Bits(imm, 4, 0) << 2);

    /// <summary>c.addi / c.addiw / c.li: rd != 0, imm in -32..31 (c.addi: nonzero).</summary>
    public static Encoded CImm(string name, int rd, int imm)
    {
        CheckReg(rd);
        CheckImm(imm, -32, 31);
        uint f3 = name switch
        {
            "c.addi" => 0u,
            "c.addiw" => 1u,
            "c.li" => 2u,
            _ => throw new ArgumentException("unknown CI op " + name, nameof(name)),
        };
        if (rd == 0 || (name == "c.addi" && imm == 0))
        {
            throw new ArgumentException($"{name} with rd=x0 or a zero immediate is a hint or reserved");
        }

        return Encoded.Half((f3 << 13) | ((uint)rd << 7) | CiImm6(imm) | 1, $"{name} {X(rd)}, {imm}");
    }

    public static Encoded CNop() => Encoded.Half(0x0001, "c.nop");

    /// <summary>c.addi16sp: sp += nzimm (multiple of 16, -512..496, nonzero).</summary>
    public static Encoded CAddi16sp(int nzimm)
    {
        CheckImm(nzimm, -512, 496, 16);
        if (nzimm == 0)
        {
            throw new ArgumentOutOfRangeException(nameof(nzimm), "zero is reserved");
        }

        uint imm = (Bit(nzimm, 9) << 12) | (Bit(nzimm, 4) << 6) | (Bit(nzimm, 6) << 5) | (Bits(nzimm, 8, 7) << 3) | (Bit(nzimm, 5) << 2);
        return Encoded.Half((3u << 13) | (2u << 7) | imm | 1, $"c.addi16sp x2, {nzimm}");
    }

    /// <summary>c.lui rd, imm6 (rd not 0 or 2; imm6 in -32..31 nonzero, giving imm6 &lt;&lt; 12).</summary>
    public static Encoded CLui(int rd, int imm6)
    {
        CheckReg(rd);
        CheckImm(imm6, -32, 31);
        if (rd is 0 or 2 || imm6 == 0)
        {
            throw new ArgumentException("c.lui needs rd not x0/x2 and a nonzero immediate");
        }

        return Encoded.Half((3u << 13) | ((uint)rd << 7) | CiImm6(imm6) | 1, $"c.lui {X(rd)}, 0x{imm6 & 0xFFFFF:x}");
    }

    /// <summary>c.srli / c.srai (rd' in x8..x15, shamt 1..63) and c.andi (imm -32..31).</summary>
    public static Encoded CShiftAndi(string name, int rd, int imm)
    {
        uint sub = name switch
        {
            "c.srli" => 0u,
            "c.srai" => 1u,
            "c.andi" => 2u,
            _ => throw new ArgumentException("unknown CB op " + name, nameof(name)),
        };
        if (sub == 2)
        {
            CheckImm(imm, -32, 31);
        }
        else
        {
            CheckImm(imm, 1, 63);
        }

        return Encoded.Half((4u << 13) | (sub << 10) | (CReg(rd) << 7) | CiImm6(imm) | 1, $"{name} {X(rd)}, {imm}");
    }

    public static readonly string[] CArithNames = ["c.sub", "c.xor", "c.or", "c.and", "c.subw", "c.addw"];

    /// <summary>c.sub / c.xor / c.or / c.and / c.subw / c.addw on x8..x15.</summary>
    public static Encoded CArith(string name, int rd, int rs2)
    {
        int idx = Array.IndexOf(CArithNames, name);
        if (idx < 0)
        {
            throw new ArgumentException("unknown CA op " + name, nameof(name));
        }

        uint bit12 = idx >= 4 ? 1u : 0u;
        uint f2 = (uint)(idx >= 4 ? idx - 4 : idx);
        return Encoded.Half((4u << 13) | (bit12 << 12) | (3u << 10) | (CReg(rd) << 7) | (f2 << 5) | (CReg(rs2) << 2) | 1,
            $"{name} {X(rd)}, {X(rs2)}");
    }

    /// <summary>c.j offset (-2048..2046, even).</summary>
    public static Encoded CJ(int offset)
    {
        CheckImm(offset, -2048, 2046, 2);
        uint imm = (Bit(offset, 11) << 12) | (Bit(offset, 4) << 11) | (Bits(offset, 9, 8) << 9) | (Bit(offset, 10) << 8)
            | (Bit(offset, 6) << 7) | (Bit(offset, 7) << 6) | (Bits(offset, 3, 1) << 3) | (Bit(offset, 5) << 2);
        return Encoded.Half((5u << 13) | imm | 1, $"c.j pc{offset:+0;-0}");
    }

    /// <summary>c.beqz / c.bnez rs1', offset (-256..254, even).</summary>
    public static Encoded CBranch(bool notZero, int rs1, int offset)
    {
        CheckImm(offset, -256, 254, 2);
        uint imm = (Bit(offset, 8) << 12) | (Bits(offset, 4, 3) << 10) | (Bits(offset, 7, 6) << 5) | (Bits(offset, 2, 1) << 3)
            | (Bit(offset, 5) << 2);
        uint f3 = notZero ? 7u : 6u;
        return Encoded.Half((f3 << 13) | imm | (CReg(rs1) << 7) | 1, $"{(notZero ? "c.bnez" : "c.beqz")} {X(rs1)}, pc{offset:+0;-0}");
    }

    /// <summary>c.slli rd, shamt (rd != 0, shamt 1..63).</summary>
    public static Encoded CSlli(int rd, int shamt)
    {
        CheckReg(rd);
        CheckImm(shamt, 1, 63);
        if (rd == 0)
        {
            throw new ArgumentException("c.slli with rd=x0 is a hint");
        }

        return Encoded.Half((0u << 13) | ((uint)rd << 7) | CiImm6(shamt) | 2, $"c.slli {X(rd)}, {shamt}");
    }

    /// <summary>c.lwsp / c.ldsp / c.fldsp reg, uimm(sp).</summary>
    public static Encoded CLoadSp(string name, int rd, int uimm)
    {
        CheckReg(rd);
        uint f3;
        uint imm;
        switch (name)
        {
            case "c.lwsp":
                CheckImm(uimm, 0, 252, 4);
                f3 = 2;
                imm = (Bit(uimm, 5) << 12) | (Bits(uimm, 4, 2) << 4) | (Bits(uimm, 7, 6) << 2);
                break;
            case "c.ldsp":
            case "c.fldsp":
                CheckImm(uimm, 0, 504, 8);
                f3 = name == "c.ldsp" ? 3u : 1u;
                imm = (Bit(uimm, 5) << 12) | (Bits(uimm, 4, 3) << 5) | (Bits(uimm, 8, 6) << 2);
                break;
            default:
                throw new ArgumentException("unknown sp-relative load " + name, nameof(name));
        }

        if (rd == 0 && name != "c.fldsp")
        {
            throw new ArgumentException(name + " with rd=x0 is reserved");
        }

        string r = name == "c.fldsp" ? F(rd) : X(rd);
        return Encoded.Half((f3 << 13) | ((uint)rd << 7) | imm | 2, $"{name} {r}, {uimm}(x2)");
    }

    /// <summary>c.swsp / c.sdsp / c.fsdsp reg, uimm(sp).</summary>
    public static Encoded CStoreSp(string name, int rs2, int uimm)
    {
        CheckReg(rs2);
        uint f3;
        uint imm;
        switch (name)
        {
            case "c.swsp":
                CheckImm(uimm, 0, 252, 4);
                f3 = 6;
                imm = (Bits(uimm, 5, 2) << 9) | (Bits(uimm, 7, 6) << 7);
                break;
            case "c.sdsp":
            case "c.fsdsp":
                CheckImm(uimm, 0, 504, 8);
                f3 = name == "c.sdsp" ? 7u : 5u;
                imm = (Bits(uimm, 5, 3) << 10) | (Bits(uimm, 8, 6) << 7);
                break;
            default:
                throw new ArgumentException("unknown sp-relative store " + name, nameof(name));
        }

        string r = name == "c.fsdsp" ? F(rs2) : X(rs2);
        return Encoded.Half((f3 << 13) | imm | ((uint)rs2 << 2) | 2, $"{name} {r}, {uimm}(x2)");
    }

    /// <summary>c.mv rd, rs2 (both nonzero).</summary>
    public static Encoded CMv(int rd, int rs2)
    {
        CheckReg(rd);
        CheckReg(rs2);
        if (rd == 0 || rs2 == 0)
        {
            throw new ArgumentException("c.mv needs nonzero registers");
        }

        return Encoded.Half((4u << 13) | ((uint)rd << 7) | ((uint)rs2 << 2) | 2, $"c.mv {X(rd)}, {X(rs2)}");
    }

    /// <summary>c.add rd, rs2 (both nonzero).</summary>
    public static Encoded CAdd(int rd, int rs2)
    {
        CheckReg(rd);
        CheckReg(rs2);
        if (rd == 0 || rs2 == 0)
        {
            throw new ArgumentException("c.add needs nonzero registers");
        }

        return Encoded.Half((4u << 13) | (1u << 12) | ((uint)rd << 7) | ((uint)rs2 << 2) | 2, $"c.add {X(rd)}, {X(rs2)}");
    }

    /// <summary>c.jr rs1 / c.jalr rs1 (rs1 nonzero).</summary>
    public static Encoded CJumpReg(bool link, int rs1)
    {
        CheckReg(rs1);
        if (rs1 == 0)
        {
            throw new ArgumentException("c.jr/c.jalr need rs1 != x0");
        }

        return Encoded.Half((4u << 13) | ((link ? 1u : 0u) << 12) | ((uint)rs1 << 7) | 2, $"{(link ? "c.jalr" : "c.jr")} {X(rs1)}");
    }
}
