// Generates the random body of one test sequence: a list of units (one instruction, or a few
// that must run together, such as "compute an address; use it"), with forward-only control
// flow that always lands on a unit boundary, so no loop and no partial unit can run.
namespace Tern.Riscv.Tests.Differential;

/// <summary>Instruction-set extensions a generated program may use.</summary>
[Flags]
public enum Ext
{
    I = 1,
    M = 2,
    A = 4,
    C = 8,
    F = 16,
    D = 32,
    All = I | M | A | C | F | D,
}

/// <summary>One instruction in a unit: fixed, or resolved once the layout is known.</summary>
internal sealed class BodyItem
{
    public Encoded Fixed { get; init; }

    public int Length { get; init; }

    /// <summary>For control flow: encodes the instruction given (target - this item's address).</summary>
    public Func<int, Encoded>? Resolve { get; init; }

    /// <summary>For control flow: how many following units the transfer skips.</summary>
    public int Skip { get; init; }

    public static BodyItem Of(Encoded e) => new() { Fixed = e, Length = e.Length };
}

/// <summary>A group of instructions that runs as a whole; branches only target unit starts.</summary>
internal sealed class BodyUnit
{
    public List<BodyItem> Items { get; } = [];

    public BodyUnit Add(Encoded e)
    {
        Items.Add(BodyItem.Of(e));
        return this;
    }

    public BodyUnit AddFlow(int length, int skip, Func<int, Encoded> resolve)
    {
        Items.Add(new BodyItem { Length = length, Skip = skip, Resolve = resolve });
        return this;
    }
}

/// <summary>Random instruction generator for one sequence body.</summary>
internal sealed class BodyGenerator
{
    /// <summary>The register reserved as the scratch base pointer; never written by a body.</summary>
    public const int Base = 31;

    /// <summary>The scratch window relative to the base register: [MemLo, MemHi).</summary>
    public const int MemLo = -2048;

    public const int MemHi = 1024;

    private static readonly int[] RoundingModes = [0, 1, 2, 3, 4, 7];

    private readonly Rng _r;
    private readonly Ext _ext;
    private readonly List<(double Weight, Action<BodyUnit> Gen)> _table = [];
    private readonly double _total;
    private readonly List<int> _recentX = [];
    private readonly List<int> _recentF = [];

    public BodyGenerator(Rng r, Ext ext)
    {
        _r = r;
        _ext = ext;
        var categories = new List<(Ext Needs, List<(double W, Action<BodyUnit> G)> Gens)>
        {
            (Ext.I, IntegerGenerators()),
            (Ext.I | Ext.M, MGenerators()),
            (Ext.I | Ext.A, AGenerators()),
            (Ext.I | Ext.C, CGenerators()),
            (Ext.I | Ext.F, FpGenerators(FpFormat.S)),
            (Ext.I | Ext.F | Ext.D, FpGenerators(FpFormat.D)),
            (Ext.I | Ext.C | Ext.F | Ext.D, CFpGenerators()),
        };
        var enabled = categories.Where(c => (c.Needs & ext) == c.Needs).ToList();
        int extra = enabled.Count - 1;
        foreach (var (needs, gens) in enabled)
        {
            // The base ISA gets 35% of the instructions (all of them in the integer-only group);
            // the extensions share the rest equally.
            double share = needs == Ext.I ? (extra == 0 ? 1.0 : 0.35) : 0.65 / extra;
            double sum = gens.Sum(g => g.W);
            foreach (var (w, g) in gens)
            {
                _table.Add((share * w / sum, g));
            }
        }

        _total = _table.Sum(t => t.Weight);
    }

    /// <summary>Generates <paramref name="units"/> units.</summary>
    public List<BodyUnit> Generate(int units)
    {
        var list = new List<BodyUnit>(units);
        for (int i = 0; i < units; i++)
        {
            var unit = new BodyUnit();
            double roll = (_r.NextU64() >> 11) * (1.0 / (1UL << 53)) * _total;
            foreach (var (w, gen) in _table)
            {
                roll -= w;
                if (roll < 0)
                {
                    gen(unit);
                    break;
                }
            }

            if (unit.Items.Count == 0)
            {
                _table[^1].Gen(unit);
            }

            list.Add(unit);
        }

        return list;
    }

    /// <summary>Lays out units from offset 0 and resolves control flow. Returns (offset, instruction) pairs.</summary>
    public static List<(int Offset, Encoded Insn)> Layout(List<BodyUnit> units)
    {
        var starts = new int[units.Count + 1];
        int pc = 0;
        for (int u = 0; u < units.Count; u++)
        {
            starts[u] = pc;
            pc += units[u].Items.Sum(i => i.Length);
        }

        starts[units.Count] = pc;
        var result = new List<(int, Encoded)>();
        for (int u = 0; u < units.Count; u++)
        {
            int at = starts[u];
            foreach (BodyItem item in units[u].Items)
            {
                Encoded e = item.Fixed;
                if (item.Resolve != null)
                {
                    int target = starts[Math.Min(units.Count, u + 1 + item.Skip)];
                    e = item.Resolve(target - at);
                }

                if (e.Length != item.Length)
                {
                    throw new InvalidOperationException("resolved instruction changed length");
                }

                result.Add((at, e));
                at += e.Length;
            }
        }

        return result;
    }

    // ---- Operand pickers ----

    /// <summary>A destination register: any but the base, x0 now and then.</summary>
    private int Rd()
    {
        int r = _r.Chance(0.04) ? 0 : _r.Range(1, 30);
        Remember(_recentX, r);
        return r;
    }

    /// <summary>
    /// A source register: any, the base included (its value is the same on both sides); often a
    /// recent destination, so results feed into later instructions.
    /// </summary>
    private int Rs() => _recentX.Count > 0 && _r.Chance(0.3) ? _r.Pick(_recentX) : _r.Chance(0.05) ? 0 : _r.Range(1, 31);

    /// <summary>A register to hold a computed address: x1..x30.</summary>
    private int Temp() => _r.Range(1, 30);

    /// <summary>A compressed-form register, x8..x15.</summary>
    private int CReg() => _r.Range(8, 15);

    /// <summary>An FP destination register.</summary>
    private int Fd()
    {
        int r = _r.Next(32);
        Remember(_recentF, r);
        return r;
    }

    /// <summary>An FP source register, often a recent destination.</summary>
    private int Fs() => _recentF.Count > 0 && _r.Chance(0.35) ? _r.Pick(_recentF) : _r.Next(32);

    private static void Remember(List<int> recent, int r)
    {
        if (r == 0 && recent.Count == 0)
        {
            return;
        }

        recent.Add(r);
        if (recent.Count > 6)
        {
            recent.RemoveAt(0);
        }
    }

    private int Rm() => _r.Chance(0.3) ? 7 : _r.Pick(RoundingModes);

    private int Skip() => _r.Next(5);

    private int Imm12() => _r.Next(6) switch
    {
        0 => _r.Pick([0, 1, -1, 2047, -2048, 0x7FF, 0x555, -0x556, 0x100]),
        1 or 2 => _r.Range(-16, 16),
        _ => _r.Range(-2048, 2047),
    };

    private int Shamt(bool word)
    {
        int max = word ? 31 : 63;
        return _r.Chance(0.3) ? _r.Pick([0, 1, max, max - 1, word ? 16 : 32, word ? 15 : 31]) : _r.Range(0, max);
    }

    private int Imm20() => _r.Chance(0.3) ? _r.Pick([0, 1, 0x80000, 0x7FFFF, 0xFFFFF, 0x80001]) : _r.Next(1 << 20);

    /// <summary>An aligned offset from the base register inside the scratch window, often in a hot spot.</summary>
    private int MemOffset(int size)
    {
        (int lo, int hi) = _r.Chance(0.6) ? (-96, 96) : (MemLo, MemHi);
        return _r.Range(lo / size, (hi / size) - 1) * size;
    }

    // ---- RV64I ----

    private List<(double, Action<BodyUnit>)> IntegerGenerators() =>
    [
        (10, u => u.Add(Rv.AluR(_r.Pick(Rv.AluRNames), Rd(), Rs(), Rs()))),
        (5, u => u.Add(Rv.AluR(_r.Pick(Rv.AluRWNames), Rd(), Rs(), Rs()))),
        (8, u => u.Add(Rv.AluI(_r.Pick(Rv.AluINames), Rd(), Rs(), Imm12()))),
        (3, u => u.Add(Rv.AluI("addiw", Rd(), Rs(), Imm12()))),
        (4, u => u.Add(Rv.ShiftI(_r.Pick(["slli", "srli", "srai"]), Rd(), Rs(), Shamt(false)))),
        (3, u => u.Add(Rv.ShiftI(_r.Pick(["slliw", "srliw", "sraiw"]), Rd(), Rs(), Shamt(true)))),
        (2, u => u.Add(Rv.Lui(Rd(), Imm20()))),
        (1, u => u.Add(Rv.Auipc(Rd(), Imm20()))),
        (6, Load),
        (5, Store),
        (4, u =>
        {
            string name = _r.Pick(Rv.BranchNames);
            int a = Rs();
            int b = _r.Chance(0.2) ? a : Rs();
            u.AddFlow(4, Skip(), rel => Rv.Branch(name, a, b, rel));
        }),
        (1.5, u =>
        {
            int rd = _r.Chance(0.3) ? 1 : Rd();
            u.AddFlow(4, Skip(), rel => Rv.Jal(rd, rel));
        }),
        (1, u =>
        {
            // auipc t, 0; jalr rd, off(t): the offset is relative to the auipc.
            int t = Temp();
            int rd = _r.Chance(0.2) ? t : Rd();
            u.Add(Rv.Auipc(t, 0)).AddFlow(4, Skip(), rel => Rv.Jalr(rd, t, rel + 4));
        }),
        (0.3, u => u.Add(_r.Chance(0.7) ? Rv.Fence() : Rv.FenceI())),
    ];

    private void Load(BodyUnit u)
    {
        string name = _r.Pick(Rv.LoadNames);
        int size = Rv.AccessSize(name);
        int a = MemOffset(size);
        if (_r.Chance(0.75))
        {
            u.Add(Rv.Load(name, Rd(), Base, a));
            return;
        }

        // Through another register: t = base + (a - off); load off(t).
        int t = Temp();
        int off = _r.Range(Math.Max(-2048, a - 2047), Math.Min(2047, a + 2048));
        u.Add(Rv.Addi(t, Base, a - off)).Add(Rv.Load(name, Rd(), t, off));
    }

    private void Store(BodyUnit u)
    {
        string name = _r.Pick(Rv.StoreNames);
        int size = Rv.AccessSize(name);
        int a = MemOffset(size);
        if (_r.Chance(0.75))
        {
            u.Add(Rv.Store(name, Rs(), Base, a));
            return;
        }

        int t = Temp();
        int off = _r.Range(Math.Max(-2048, a - 2047), Math.Min(2047, a + 2048));
        u.Add(Rv.Addi(t, Base, a - off)).Add(Rv.Store(name, Rs(), t, off));
    }

    // ---- M ----

    private List<(double, Action<BodyUnit>)> MGenerators() =>
    [
        (10, u => u.Add(Rv.AluR(_r.Pick(Rv.MulDivNames), Rd(), Rs(), _r.Chance(0.1) ? 0 : Rs()))),
        (6, u => u.Add(Rv.AluR(_r.Pick(Rv.MulDivWNames), Rd(), Rs(), _r.Chance(0.1) ? 0 : Rs()))),
        (3, MulDivEdge),
    ];

    /// <summary>Materializes an overflow case (MIN / -1 and friends) right before a mul/div op.</summary>
    private void MulDivEdge(BodyUnit u)
    {
        int a = Temp();
        int b = Temp();
        while (b == a)
        {
            b = Temp();
        }

        bool word = _r.Chance(0.4);
        // a = INT64_MIN or INT32_MIN (sign-extended), or -1 / 0 / 1 for variety.
        switch (_r.Next(4))
        {
            case 0:
            case 1:
                u.Add(Rv.Addi(a, 0, 1)).Add(Rv.ShiftI("slli", a, a, word ? 31 : 63));
                if (word)
                {
                    u.Add(Rv.AluI("addiw", a, a, 0));
                }

                break;
            case 2:
                u.Add(Rv.Lui(a, 0x80000));
                break;
            default:
                u.Add(Rv.Addi(a, 0, _r.Pick([-1, 0, 1])));
                break;
        }

        u.Add(Rv.Addi(b, 0, _r.Pick([-1, -1, 0, 1])));
        string name = word ? _r.Pick(Rv.MulDivWNames) : _r.Pick(Rv.MulDivNames);
        u.Add(Rv.AluR(name, Rd(), a, b));
    }

    // ---- A ----

    private List<(double, Action<BodyUnit>)> AGenerators() =>
    [
        (8, u =>
        {
            int width = _r.Chance(0.5) ? 4 : 8;
            int t = Temp();
            u.Add(Rv.Addi(t, Base, MemOffset(width)))
                .Add(Rv.Amo(_r.Pick(Rv.AmoNames), width, Rd(), t, Rs(), _r.Chance(0.3), _r.Chance(0.3)));
        }),
        (4, LrSc),
        (0.7, u =>
        {
            // An SC without a reservation must fail and not store.
            int width = _r.Chance(0.5) ? 4 : 8;
            int t = Temp();
            u.Add(Rv.Addi(t, Base, MemOffset(width))).Add(Rv.Amo("sc", width, Rd(), t, Rs(), false, false));
        }),
    ];

    /// <summary>addi t, base, off; lr rd1, (t); up to 2 ALU ops; sc rd2, rs2, (t).</summary>
    private void LrSc(BodyUnit u)
    {
        int width = _r.Chance(0.5) ? 4 : 8;
        int t = Temp();
        int NotT()
        {
            int r;
            do
            {
                r = Rd();
            }
            while (r == t);
            return r;
        }

        int loaded = NotT();
        u.Add(Rv.Addi(t, Base, MemOffset(width)));
        u.Add(Rv.Amo("lr", width, loaded, t, 0, _r.Chance(0.3), _r.Chance(0.3)));
        int ops = _r.Next(3);
        int value = Rs();
        for (int i = 0; i < ops; i++)
        {
            int rd = NotT();
            u.Add(_r.Chance(0.5)
                ? Rv.AluI(_r.Pick(["addi", "xori", "ori", "andi"]), rd, loaded, Imm12())
                : Rv.AluR(_r.Pick(["add", "sub", "xor", "or", "and"]), rd, loaded, Rs()));
            value = rd;
        }

        u.Add(Rv.Amo("sc", width, Rd(), t, _r.Chance(0.8) ? value : Rs(), _r.Chance(0.3), _r.Chance(0.3)));
    }

    // ---- C ----

    private int NonZeroImm6()
    {
        int v;
        do
        {
            v = _r.Range(-32, 31);
        }
        while (v == 0);
        return v;
    }

    private List<(double, Action<BodyUnit>)> CGenerators() =>
    [
        (2, u => u.Add(Rv.CImm("c.addi", _r.Range(1, 30), NonZeroImm6()))),
        (2, u => u.Add(Rv.CImm("c.addiw", _r.Range(1, 30), _r.Range(-32, 31)))),
        (2, u => u.Add(Rv.CImm("c.li", _r.Range(1, 30), _r.Range(-32, 31)))),
        (1, u =>
        {
            int rd;
            do
            {
                rd = _r.Range(1, 30);
            }
            while (rd == 2);
            u.Add(Rv.CLui(rd, NonZeroImm6()));
        }),
        (0.7, u => u.Add(Rv.CAddi16sp(NonZeroImm6() * 16))),
        (0.7, u => u.Add(Rv.CAddi4spn(CReg(), _r.Range(1, 255) * 4))),
        (1.5, u => u.Add(Rv.CSlli(_r.Range(1, 30), _r.Range(1, 63)))),
        (1.5, u => u.Add(Rv.CShiftAndi(_r.Chance(0.5) ? "c.srli" : "c.srai", CReg(), _r.Range(1, 63)))),
        (1, u => u.Add(Rv.CShiftAndi("c.andi", CReg(), _r.Range(-32, 31)))),
        (2, u => u.Add(Rv.CMv(_r.Range(1, 30), _r.Range(1, 31)))),
        (2, u => u.Add(Rv.CAdd(_r.Range(1, 30), _r.Range(1, 31)))),
        (4, u => u.Add(Rv.CArith(_r.Pick(Rv.CArithNames), CReg(), CReg()))),
        (4, CLoadStore),
        (2.5, CSpLoadStore),
        (1, u => u.AddFlow(2, Skip(), Rv.CJ)),
        (1.5, u =>
        {
            bool nz = _r.Chance(0.5);
            int rs = CReg();
            u.AddFlow(2, Skip(), rel => Rv.CBranch(nz, rs, rel));
        }),
        (0.8, u =>
        {
            // auipc t, 0; addi t, t, target; c.jr t / c.jalr t
            int t = Temp();
            bool link = _r.Chance(0.5);
            u.Add(Rv.Auipc(t, 0)).AddFlow(4, Skip(), rel => Rv.Addi(t, t, rel + 4)).Add(Rv.CJumpReg(link, t));
        }),
        (0.2, u => u.Add(Rv.CNop())),
    ];

    /// <summary>Splits a scratch offset into (addi offset, compressed unsigned offset).</summary>
    private (int Addi, int Uimm) SplitCompressed(int size, int maxUimm)
    {
        int a = MemOffset(size);
        int uimm = _r.Range(0, Math.Min(maxUimm, a - MemLo) / size) * size;
        return (a - uimm, uimm);
    }

    private void CLoadStore(BodyUnit u)
    {
        string name = _r.Pick(["c.lw", "c.ld", "c.sw", "c.sd"]);
        int size = name.EndsWith('w') ? 4 : 8;
        var (addi, uimm) = SplitCompressed(size, size == 4 ? 124 : 248);
        int t = CReg();
        u.Add(Rv.Addi(t, Base, addi)).Add(Rv.CLoadStore(name, CReg(), t, uimm));
    }

    private void CSpLoadStore(BodyUnit u)
    {
        string name = _r.Pick(["c.lwsp", "c.ldsp", "c.swsp", "c.sdsp"]);
        int size = name.Contains('w') ? 4 : 8;
        var (addi, uimm) = SplitCompressed(size, size == 4 ? 252 : 504);
        u.Add(Rv.Addi(2, Base, addi));
        u.Add(name.Contains('l') ? Rv.CLoadSp(name, _r.Range(1, 30), uimm) : Rv.CStoreSp(name, Rs(), uimm));
    }

    private List<(double, Action<BodyUnit>)> CFpGenerators() =>
    [
        (2, u =>
        {
            bool load = _r.Chance(0.5);
            var (addi, uimm) = SplitCompressed(8, 248);
            int t = CReg();
            u.Add(Rv.Addi(t, Base, addi)).Add(Rv.CLoadStore(load ? "c.fld" : "c.fsd", CReg(), t, uimm));
        }),
        (1, u =>
        {
            bool load = _r.Chance(0.5);
            var (addi, uimm) = SplitCompressed(8, 504);
            u.Add(Rv.Addi(2, Base, addi)).Add(load ? Rv.CLoadSp("c.fldsp", Fd(), uimm) : Rv.CStoreSp("c.fsdsp", Fs(), uimm));
        }),
    ];

    // ---- F / D ----

    private List<(double, Action<BodyUnit>)> FpGenerators(FpFormat f)
    {
        var list = new List<(double, Action<BodyUnit>)>
        {
            (8, u => u.Add(Rv.FArith(_r.Pick(Rv.FpArithNames), f, Fd(), Fs(), Fs(), Rm()))),
            (1.5, u => u.Add(Rv.FSqrt(f, Fd(), Fs(), Rm()))),
            (5, u => u.Add(Rv.Fma(_r.Pick(Rv.FmaNames), f, Fd(), Fs(), Fs(), Fs(), Rm()))),
            (2, u =>
            {
                int a = Fs();
                u.Add(Rv.FSgnj(_r.Pick(Rv.FSgnjNames), f, Fd(), a, _r.Chance(0.3) ? a : Fs()));
            }),
            (2, u => u.Add(Rv.FMinMax(_r.Chance(0.5), f, Fd(), Fs(), Fs()))),
            (2.5, u =>
            {
                int a = Fs();
                u.Add(Rv.FCompare(_r.Pick(Rv.FCompareNames), f, Rd(), a, _r.Chance(0.15) ? a : Fs()));
            }),
            (1.5, u => u.Add(Rv.FClass(f, Rd(), Fs()))),
            (3, u => u.Add(Rv.FCvtToInt(f, _r.Next(4), Rd(), Fs(), Rm()))),
            (3, u => u.Add(Rv.FCvtFromInt(f, _r.Next(4), Fd(), Rs(), Rm()))),
            (1, u => u.Add(Rv.FMvToInt(f, Rd(), Fs()))),
            (1, u => u.Add(Rv.FMvFromInt(f, Fd(), Rs()))),
            (1, u => u.Add(Rv.FLoad(f, Fd(), Base, MemOffset(f == FpFormat.S ? 4 : 8)))),
            (1, u => u.Add(Rv.FStore(f, Fs(), Base, MemOffset(f == FpFormat.S ? 4 : 8)))),
            (2, u => FpEdge(u, f)),
        };
        if (f == FpFormat.S)
        {
            list.Add((1.5, FpCsr));
        }
        else
        {
            list.Add((2, u => u.Add(Rv.FCvtFloat(_r.Chance(0.5) ? FpFormat.S : FpFormat.D, Fd(), Fs(), Rm()))));
        }

        return list;
    }

    /// <summary>
    /// Pairs whose exact results hinge on corner rules: x + (-x) and x - x (the sign of an exact
    /// zero depends on the rounding mode), and a*b - round(a*b) through an FMA (the fused residual).
    /// </summary>
    private void FpEdge(BodyUnit u, FpFormat f)
    {
        int a = Fs();
        int b = Fs();
        int t = Fd();
        switch (_r.Next(3))
        {
            case 0:
                u.Add(Rv.FSgnj("fsgnjn", f, t, a, a)).Add(Rv.FArith("fadd", f, Fd(), a, t, Rm()));
                break;
            case 1:
                u.Add(Rv.FArith("fsub", f, t, a, a, Rm()));
                break;
            default:
                u.Add(Rv.FArith("fmul", f, t, a, b, Rm())).Add(Rv.Fma(_r.Pick(["fmsub", "fnmadd"]), f, Fd(), a, b, t, Rm()));
                break;
        }
    }

    /// <summary>Reads and writes of fflags / frm / fcsr that keep frm valid.</summary>
    private void FpCsr(BodyUnit u)
    {
        switch (_r.Next(7))
        {
            case 0:
                u.Add(Rv.Csr("csrrs", Rd(), Rv.CsrFflags, 0));
                break;
            case 1:
                u.Add(Rv.Csr("csrrs", Rd(), Rv.CsrFcsr, 0));
                break;
            case 2:
                u.Add(Rv.Csr("csrrwi", Rd(), Rv.CsrFrm, _r.Range(0, 4)));
                break;
            case 3:
                u.Add(Rv.Csr(_r.Chance(0.5) ? "csrrsi" : "csrrci", Rd(), Rv.CsrFflags, _r.Next(32)));
                break;
            case 4:
                u.Add(Rv.Csr("csrrw", Rd(), Rv.CsrFflags, Rs()));
                break;
            case 5:
                u.Add(Rv.Csr("csrrs", Rd(), Rv.CsrFrm, 0));
                break;
            default:
                u.Add(Rv.Csr("csrrwi", Rd(), Rv.CsrFflags, _r.Next(32)));
                break;
        }
    }
}
