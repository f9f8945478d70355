// The F and D extensions: register moves, NaN-boxing, rounding-mode resolution and fflags
// accrual. The arithmetic itself is IEEE 754 in software (Fpu/), because every rounding
// mode and exception flag must be exact and the host FPU offers only round-to-nearest.
using Tern.Riscv.Fpu;

namespace Tern.Riscv;

public sealed unsafe partial class Hart
{
    private const ulong BoxMask = 0xFFFF_FFFF_0000_0000UL;
    private const uint SignS = 0x8000_0000u;
    private const ulong SignD = 0x8000_0000_0000_0000UL;

    // Single-precision operands must be NaN-boxed; anything else reads as the canonical NaN.
    private uint S(int r)
    {
        ulong v = _f[r];
        return (v & BoxMask) == BoxMask ? (uint)v : SoftFloat32.CanonicalNaN;
    }

    private void SetS(int r, uint value) => _f[r] = BoxMask | value;

    private static bool UsesRoundingMode(Op op) => op switch
    {
        Op.FsgnjS or Op.FsgnjnS or Op.FsgnjxS or Op.FminS or Op.FmaxS or Op.FmvXW or Op.FeqS or Op.FltS or Op.FleS or Op.FclassS or Op.FmvWX => false,
        Op.FsgnjD or Op.FsgnjnD or Op.FsgnjxD or Op.FminD or Op.FmaxD or Op.FmvXD or Op.FeqD or Op.FltD or Op.FleD or Op.FclassD or Op.FmvDX => false,
        Op.Flw or Op.Fsw or Op.Fld or Op.Fsd => false,
        _ => true,
    };

    private Outcome ExecuteFloat(ref Insn d)
    {
        if (!FpEnabled)
            return IllegalOutcome(ref d);
        int rm = d.Rm == 7 ? (int)_frm : d.Rm;
        if (rm > 4 && UsesRoundingMode(d.Op))
            return IllegalOutcome(ref d);
        uint flags = 0;
        ulong* x = _x;
        int rd = d.Rd, rs1 = d.Rs1, rs2 = d.Rs2, rs3 = d.Rs3;
        switch (d.Op)
        {
            case Op.Flw:
            case Op.Fld:
                {
                    int size = d.Op == Op.Flw ? 4 : 8;
                    if (!LoadData(x[rs1] + (ulong)d.Imm, size, out ulong v))
                        return Outcome.Fault;
                    _f[rd] = size == 4 ? BoxMask | (uint)v : v;
                    MarkFpDirty();
                    return Outcome.Next;
                }
            case Op.Fsw:
            case Op.Fsd:
                {
                    int size = d.Op == Op.Fsw ? 4 : 8;
                    int r = StoreData(x[rs1] + (ulong)d.Imm, size, _f[rs2]);
                    return r == StoreFault ? Outcome.Fault : r == StoreEndsBlock ? Outcome.Sequential : Outcome.Next;
                }

            case Op.FaddS: SetS(rd, SoftFloat32.Add(S(rs1), S(rs2), rm, ref flags)); break;
            case Op.FsubS: SetS(rd, SoftFloat32.Sub(S(rs1), S(rs2), rm, ref flags)); break;
            case Op.FmulS: SetS(rd, SoftFloat32.Mul(S(rs1), S(rs2), rm, ref flags)); break;
            case Op.FdivS: SetS(rd, SoftFloat32.Div(S(rs1), S(rs2), rm, ref flags)); break;
            case Op.FsqrtS: SetS(rd, SoftFloat32.Sqrt(S(rs1), rm, ref flags)); break;
            case Op.FmaddS: SetS(rd, SoftFloat32.MulAdd(S(rs1), S(rs2), S(rs3), rm, ref flags)); break;
            case Op.FmsubS: SetS(rd, SoftFloat32.MulAdd(S(rs1), S(rs2), S(rs3) ^ SignS, rm, ref flags)); break;
            case Op.FnmsubS: SetS(rd, SoftFloat32.MulAdd(S(rs1) ^ SignS, S(rs2), S(rs3), rm, ref flags)); break;
            case Op.FnmaddS: SetS(rd, SoftFloat32.MulAdd(S(rs1) ^ SignS, S(rs2), S(rs3) ^ SignS, rm, ref flags)); break;
            case Op.FsgnjS: SetS(rd, (S(rs1) & ~SignS) | (S(rs2) & SignS)); break;
            case Op.FsgnjnS: SetS(rd, (S(rs1) & ~SignS) | (~S(rs2) & SignS)); break;
            case Op.FsgnjxS: SetS(rd, S(rs1) ^ (S(rs2) & SignS)); break;
            case Op.FminS: SetS(rd, SoftFloat32.Min(S(rs1), S(rs2), ref flags)); break;
            case Op.FmaxS: SetS(rd, SoftFloat32.Max(S(rs1), S(rs2), ref flags)); break;
            case Op.FcvtWS: x[rd] = (ulong)(long)SoftFloat32.ToInt32(S(rs1), rm, ref flags); break;
            case Op.FcvtWuS: x[rd] = (ulong)(long)(int)SoftFloat32.ToUInt32(S(rs1), rm, ref flags); break;
            case Op.FcvtLS: x[rd] = (ulong)SoftFloat32.ToInt64(S(rs1), rm, ref flags); break;
            case Op.FcvtLuS: x[rd] = SoftFloat32.ToUInt64(S(rs1), rm, ref flags); break;
            case Op.FmvXW: x[rd] = (ulong)(long)(int)(uint)_f[rs1]; break;
            case Op.FeqS: x[rd] = SoftFloat32.Eq(S(rs1), S(rs2), ref flags) ? 1UL : 0; break;
            case Op.FltS: x[rd] = SoftFloat32.Lt(S(rs1), S(rs2), ref flags) ? 1UL : 0; break;
            case Op.FleS: x[rd] = SoftFloat32.Le(S(rs1), S(rs2), ref flags) ? 1UL : 0; break;
            case Op.FclassS: x[rd] = SoftFloat32.Classify(S(rs1)); break;
            case Op.FcvtSW: SetS(rd, SoftFloat32.FromInt32((int)x[rs1], rm, ref flags)); break;
            case Op.FcvtSWu: SetS(rd, SoftFloat32.FromUInt32((uint)x[rs1], rm, ref flags)); break;
            case Op.FcvtSL: SetS(rd, SoftFloat32.FromInt64((long)x[rs1], rm, ref flags)); break;
            case Op.FcvtSLu: SetS(rd, SoftFloat32.FromUInt64(x[rs1], rm, ref flags)); break;
            case Op.FmvWX: SetS(rd, (uint)x[rs1]); break;

            case Op.FaddD: _f[rd] = SoftFloat64.Add(_f[rs1], _f[rs2], rm, ref flags); break;
            case Op.FsubD: _f[rd] = SoftFloat64.Sub(_f[rs1], _f[rs2], rm, ref flags); break;
            case Op.FmulD: _f[rd] = SoftFloat64.Mul(_f[rs1], _f[rs2], rm, ref flags); break;
            case Op.FdivD: _f[rd] = SoftFloat64.Div(_f[rs1], _f[rs2], rm, ref flags); break;
            case Op.FsqrtD: _f[rd] = SoftFloat64.Sqrt(_f[rs1], rm, ref flags); break;
            case Op.FmaddD: _f[rd] = SoftFloat64.MulAdd(_f[rs1], _f[rs2], _f[rs3], rm, ref flags); break;
            case Op.FmsubD: _f[rd] = SoftFloat64.MulAdd(_f[rs1], _f[rs2], _f[rs3] ^ SignD, rm, ref flags); break;
            case Op.FnmsubD: _f[rd] = SoftFloat64.MulAdd(_f[rs1] ^ SignD, _f[rs2], _f[rs3], rm, ref flags); break;
            case Op.FnmaddD: _f[rd] = SoftFloat64.MulAdd(_f[rs1] ^ SignD, _f[rs2], _f[rs3] ^ SignD, rm, ref flags); break;
            case Op.FsgnjD: _f[rd] = (_f[rs1] & ~SignD) | (_f[rs2] & SignD); break;
            case Op.FsgnjnD: _f[rd] = (_f[rs1] & ~SignD) | (~_f[rs2] & SignD); break;
            case Op.FsgnjxD: _f[rd] = _f[rs1] ^ (_f[rs2] & SignD); break;
            case Op.FminD: _f[rd] = SoftFloat64.Min(_f[rs1], _f[rs2], ref flags); break;
            case Op.FmaxD: _f[rd] = SoftFloat64.Max(_f[rs1], _f[rs2], ref flags); break;
            case Op.FcvtSD: SetS(rd, SoftFloat64.ToFloat32(_f[rs1], rm, ref flags)); break;
            case Op.FcvtDS: _f[rd] = SoftFloat32.ToFloat64(S(rs1), ref flags); break;
            case Op.FcvtWD: x[rd] = (ulong)(long)SoftFloat64.ToInt32(_f[rs1], rm, ref flags); break;
            case Op.FcvtWuD: x[rd] = (ulong)(long)(int)SoftFloat64.ToUInt32(_f[rs1], rm, ref flags); break;
            case Op.FcvtLD: x[rd] = (ulong)SoftFloat64.ToInt64(_f[rs1], rm, ref flags); break;
            case Op.FcvtLuD: x[rd] = SoftFloat64.ToUInt64(_f[rs1], rm, ref flags); break;
            case Op.FmvXD: x[rd] = _f[rs1]; break;
            case Op.FeqD: x[rd] = SoftFloat64.Eq(_f[rs1], _f[rs2], ref flags) ? 1UL : 0; break;
            case Op.FltD: x[rd] = SoftFloat64.Lt(_f[rs1], _f[rs2], ref flags) ? 1UL : 0; break;
            case Op.FleD: x[rd] = SoftFloat64.Le(_f[rs1], _f[rs2], ref flags) ? 1UL : 0; break;
            case Op.FclassD: x[rd] = SoftFloat64.Classify(_f[rs1]); break;
            case Op.FcvtDW: _f[rd] = SoftFloat64.FromInt32((int)x[rs1], rm, ref flags); break;
            case Op.FcvtDWu: _f[rd] = SoftFloat64.FromUInt32((uint)x[rs1], rm, ref flags); break;
            case Op.FcvtDL: _f[rd] = SoftFloat64.FromInt64((long)x[rs1], rm, ref flags); break;
            case Op.FcvtDLu: _f[rd] = SoftFloat64.FromUInt64(x[rs1], rm, ref flags); break;
            case Op.FmvDX: _f[rd] = x[rs1]; break;
            default: return IllegalOutcome(ref d);
        }
        _fflags |= flags;
        MarkFpDirty();
        return Outcome.Next;
    }
}
