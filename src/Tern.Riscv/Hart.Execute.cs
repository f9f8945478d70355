// The interpreter's hot loop: runs one predecoded block. Integer ALU operations, branches and
// the fast paths of loads and stores are inline here; everything rarer calls out. A block
// ends at a control transfer, so pc is only materialised at its end or at a trap.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Tern.Riscv;

public sealed unsafe partial class Hart
{
    private const ulong Align2 = PageMask | 1, Align4 = PageMask | 3, Align8 = PageMask | 7;

    // Runs blocks until the budget is spent or something needs the outer loop (a trap, a
    // privilege or translation change, an interrupt, a stop request). Plain branches and
    // fall-throughs follow remembered successors without leaving this method, so the
    // register-file and TLB pointers stay in registers across blocks.
    [SkipLocalsInit]
    private StopReason ExecuteBlocks(Block block, ulong target)
    {
        ulong* x = _x;
        TlbEntry* rt = _readTlb;
        TlbEntry* wt = _writeTlb;
    NextBlock:
        Insn[] insns = block.Insns;
        ulong remaining = target - _executed;
        int n = remaining < (ulong)insns.Length ? (int)remaining : insns.Length;
        ulong pc0 = _pc;
        ref Insn first = ref MemoryMarshal.GetArrayDataReference(insns);
        int i = 0;
        for (; i < n; i++)
        {
            ref Insn d = ref Unsafe.Add(ref first, i);
            switch (d.Op)
            {
                case Op.Addi: x[d.Rd] = x[d.Rs1] + (ulong)d.Imm; continue;
                case Op.Add: x[d.Rd] = x[d.Rs1] + x[d.Rs2]; continue;
                case Op.Sub: x[d.Rd] = x[d.Rs1] - x[d.Rs2]; continue;
                case Op.Lui: x[d.Rd] = (ulong)d.Imm; continue;
                case Op.Auipc: x[d.Rd] = pc0 + d.PcOffset + (ulong)d.Imm; continue;
                case Op.Slti: x[d.Rd] = (long)x[d.Rs1] < d.Imm ? 1UL : 0; continue;
                case Op.Sltiu: x[d.Rd] = x[d.Rs1] < (ulong)d.Imm ? 1UL : 0; continue;
                case Op.Xori: x[d.Rd] = x[d.Rs1] ^ (ulong)d.Imm; continue;
                case Op.Ori: x[d.Rd] = x[d.Rs1] | (ulong)(long)d.Imm; continue;
                case Op.Andi: x[d.Rd] = x[d.Rs1] & (ulong)d.Imm; continue;
                case Op.Slli: x[d.Rd] = x[d.Rs1] << d.Imm; continue;
                case Op.Srli: x[d.Rd] = x[d.Rs1] >> d.Imm; continue;
                case Op.Srai: x[d.Rd] = (ulong)((long)x[d.Rs1] >> d.Imm); continue;
                case Op.Sll: x[d.Rd] = x[d.Rs1] << (int)x[d.Rs2]; continue;
                case Op.Slt: x[d.Rd] = (long)x[d.Rs1] < (long)x[d.Rs2] ? 1UL : 0; continue;
                case Op.Sltu: x[d.Rd] = x[d.Rs1] < x[d.Rs2] ? 1UL : 0; continue;
                case Op.Xor: x[d.Rd] = x[d.Rs1] ^ x[d.Rs2]; continue;
                case Op.Srl: x[d.Rd] = x[d.Rs1] >> (int)x[d.Rs2]; continue;
                case Op.Sra: x[d.Rd] = (ulong)((long)x[d.Rs1] >> (int)x[d.Rs2]); continue;
                case Op.Or: x[d.Rd] = x[d.Rs1] | x[d.Rs2]; continue;
                case Op.And: x[d.Rd] = x[d.Rs1] & x[d.Rs2]; continue;
                case Op.Addiw: x[d.Rd] = (ulong)(long)(int)((uint)x[d.Rs1] + (uint)d.Imm); continue;
                case Op.Slliw: x[d.Rd] = (ulong)(long)((int)x[d.Rs1] << d.Imm); continue;
                case Op.Srliw: x[d.Rd] = (ulong)(long)(int)((uint)x[d.Rs1] >> d.Imm); continue;
                case Op.Sraiw: x[d.Rd] = (ulong)(long)((int)x[d.Rs1] >> d.Imm); continue;
                case Op.Addw: x[d.Rd] = (ulong)(long)(int)((uint)x[d.Rs1] + (uint)x[d.Rs2]); continue;
                case Op.Subw: x[d.Rd] = (ulong)(long)(int)((uint)x[d.Rs1] - (uint)x[d.Rs2]); continue;
                case Op.Sllw: x[d.Rd] = (ulong)(long)((int)x[d.Rs1] << (int)x[d.Rs2]); continue;
                case Op.Srlw: x[d.Rd] = (ulong)(long)(int)((uint)x[d.Rs1] >> (int)x[d.Rs2]); continue;
                case Op.Sraw: x[d.Rd] = (ulong)(long)((int)x[d.Rs1] >> (int)x[d.Rs2]); continue;

                case Op.Mul: x[d.Rd] = x[d.Rs1] * x[d.Rs2]; continue;
                case Op.Mulh: x[d.Rd] = (ulong)Math.BigMul((long)x[d.Rs1], (long)x[d.Rs2], out _); continue;
                case Op.Mulhu: x[d.Rd] = Math.BigMul(x[d.Rs1], x[d.Rs2], out _); continue;
                case Op.Mulhsu:
                    {
                        ulong a = x[d.Rs1], b = x[d.Rs2];
                        ulong hi = Math.BigMul(a, b, out _);
                        x[d.Rd] = (long)a < 0 ? hi - b : hi;
                        continue;
                    }
                case Op.Div:
                    {
                        long a = (long)x[d.Rs1], b = (long)x[d.Rs2];
                        x[d.Rd] = b == 0 ? ulong.MaxValue : (b == -1 ? (ulong)(0 - a) : (ulong)(a / b));
                        continue;
                    }
                case Op.Divu:
                    {
                        ulong b = x[d.Rs2];
                        x[d.Rd] = b == 0 ? ulong.MaxValue : x[d.Rs1] / b;
                        continue;
                    }
                case Op.Rem:
                    {
                        long a = (long)x[d.Rs1], b = (long)x[d.Rs2];
                        x[d.Rd] = b == 0 ? (ulong)a : (b == -1 ? 0 : (ulong)(a % b));
                        continue;
                    }
                case Op.Remu:
                    {
                        ulong b = x[d.Rs2];
                        x[d.Rd] = b == 0 ? x[d.Rs1] : x[d.Rs1] % b;
                        continue;
                    }
                case Op.Mulw: x[d.Rd] = (ulong)(long)(int)((uint)x[d.Rs1] * (uint)x[d.Rs2]); continue;
                case Op.Divw:
                    {
                        int a = (int)x[d.Rs1], b = (int)x[d.Rs2];
                        x[d.Rd] = (ulong)(long)(b == 0 ? -1 : (b == -1 ? (int)(0u - (uint)a) : a / b));
                        continue;
                    }
                case Op.Divuw:
                    {
                        uint a = (uint)x[d.Rs1], b = (uint)x[d.Rs2];
                        x[d.Rd] = (ulong)(long)(int)(b == 0 ? uint.MaxValue : a / b);
                        continue;
                    }
                case Op.Remw:
                    {
                        int a = (int)x[d.Rs1], b = (int)x[d.Rs2];
                        x[d.Rd] = (ulong)(long)(b == 0 ? a : (b == -1 ? 0 : a % b));
                        continue;
                    }
                case Op.Remuw:
                    {
                        uint a = (uint)x[d.Rs1], b = (uint)x[d.Rs2];
                        x[d.Rd] = (ulong)(long)(int)(b == 0 ? a : a % b);
                        continue;
                    }

                case Op.Jal:
                    x[d.Rd] = pc0 + d.PcOffset + d.Length;
                    _pc = pc0 + d.PcOffset + (ulong)d.Imm;
                    goto Jumped;
                case Op.Jalr:
                    {
                        ulong dest = (x[d.Rs1] + (ulong)d.Imm) & ~1UL;
                        x[d.Rd] = pc0 + d.PcOffset + d.Length;
                        _pc = dest;
                        goto Jumped;
                    }
                case Op.Beq: _pc = pc0 + d.PcOffset + (x[d.Rs1] == x[d.Rs2] ? (ulong)d.Imm : d.Length); goto Jumped;
                case Op.Bne: _pc = pc0 + d.PcOffset + (x[d.Rs1] != x[d.Rs2] ? (ulong)d.Imm : d.Length); goto Jumped;
                case Op.Blt: _pc = pc0 + d.PcOffset + ((long)x[d.Rs1] < (long)x[d.Rs2] ? (ulong)d.Imm : d.Length); goto Jumped;
                case Op.Bge: _pc = pc0 + d.PcOffset + ((long)x[d.Rs1] >= (long)x[d.Rs2] ? (ulong)d.Imm : d.Length); goto Jumped;
                case Op.Bltu: _pc = pc0 + d.PcOffset + (x[d.Rs1] < x[d.Rs2] ? (ulong)d.Imm : d.Length); goto Jumped;
                case Op.Bgeu: _pc = pc0 + d.PcOffset + (x[d.Rs1] >= x[d.Rs2] ? (ulong)d.Imm : d.Length); goto Jumped;

                case Op.Ld:
                    {
                        ulong va = x[d.Rs1] + (ulong)d.Imm;
                        TlbEntry* e = rt + ((va >> 12) & (TlbSize - 1));
                        if (e->Tag == (va & Align8))
                        {
                            x[d.Rd] = *(ulong*)(e->Addend + (long)va);
                            continue;
                        }
                        _inBlock = (uint)i;
                        if (!LoadSlow(va, 8, out ulong v))
                            goto Faulted;
                        x[d.Rd] = v;
                        continue;
                    }
                case Op.Lw:
                case Op.Lwu:
                    {
                        ulong va = x[d.Rs1] + (ulong)d.Imm;
                        TlbEntry* e = rt + ((va >> 12) & (TlbSize - 1));
                        uint v;
                        if (e->Tag == (va & Align4))
                        {
                            v = *(uint*)(e->Addend + (long)va);
                        }
                        else
                        {
                            _inBlock = (uint)i;
                            if (!LoadSlow(va, 4, out ulong w))
                                goto Faulted;
                            v = (uint)w;
                        }
                        x[d.Rd] = d.Op == Op.Lw ? (ulong)(long)(int)v : v;
                        continue;
                    }
                case Op.Lh:
                case Op.Lhu:
                    {
                        ulong va = x[d.Rs1] + (ulong)d.Imm;
                        TlbEntry* e = rt + ((va >> 12) & (TlbSize - 1));
                        ushort v;
                        if (e->Tag == (va & Align2))
                        {
                            v = *(ushort*)(e->Addend + (long)va);
                        }
                        else
                        {
                            _inBlock = (uint)i;
                            if (!LoadSlow(va, 2, out ulong w))
                                goto Faulted;
                            v = (ushort)w;
                        }
                        x[d.Rd] = d.Op == Op.Lh ? (ulong)(long)(short)v : v;
                        continue;
                    }
                case Op.Lb:
                case Op.Lbu:
                    {
                        ulong va = x[d.Rs1] + (ulong)d.Imm;
                        TlbEntry* e = rt + ((va >> 12) & (TlbSize - 1));
                        byte v;
                        if (e->Tag == (va & PageMask))
                        {
                            v = *(byte*)(e->Addend + (long)va);
                        }
                        else
                        {
                            _inBlock = (uint)i;
                            if (!LoadSlow(va, 1, out ulong w))
                                goto Faulted;
                            v = (byte)w;
                        }
                        x[d.Rd] = d.Op == Op.Lb ? (ulong)(long)(sbyte)v : v;
                        continue;
                    }
                case Op.Sd:
                    {
                        ulong va = x[d.Rs1] + (ulong)d.Imm;
                        TlbEntry* e = wt + ((va >> 12) & (TlbSize - 1));
                        if (e->Tag == (va & Align8))
                        {
                            *(ulong*)(e->Addend + (long)va) = x[d.Rs2];
                            continue;
                        }
                        _inBlock = (uint)i;
                        int r = StoreSlow(va, 8, x[d.Rs2]);
                        if (r == StoreFault)
                            goto Faulted;
                        if (r == StoreEndsBlock)
                            goto Sequential;
                        continue;
                    }
                case Op.Sw:
                    {
                        ulong va = x[d.Rs1] + (ulong)d.Imm;
                        TlbEntry* e = wt + ((va >> 12) & (TlbSize - 1));
                        if (e->Tag == (va & Align4))
                        {
                            *(uint*)(e->Addend + (long)va) = (uint)x[d.Rs2];
                            continue;
                        }
                        _inBlock = (uint)i;
                        int r = StoreSlow(va, 4, x[d.Rs2]);
                        if (r == StoreFault)
                            goto Faulted;
                        if (r == StoreEndsBlock)
                            goto Sequential;
                        continue;
                    }
                case Op.Sh:
                    {
                        ulong va = x[d.Rs1] + (ulong)d.Imm;
                        TlbEntry* e = wt + ((va >> 12) & (TlbSize - 1));
                        if (e->Tag == (va & Align2))
                        {
                            *(ushort*)(e->Addend + (long)va) = (ushort)x[d.Rs2];
                            continue;
                        }
                        _inBlock = (uint)i;
                        int r = StoreSlow(va, 2, x[d.Rs2]);
                        if (r == StoreFault)
                            goto Faulted;
                        if (r == StoreEndsBlock)
                            goto Sequential;
                        continue;
                    }
                case Op.Sb:
                    {
                        ulong va = x[d.Rs1] + (ulong)d.Imm;
                        TlbEntry* e = wt + ((va >> 12) & (TlbSize - 1));
                        if (e->Tag == (va & PageMask))
                        {
                            *(byte*)(e->Addend + (long)va) = (byte)x[d.Rs2];
                            continue;
                        }
                        _inBlock = (uint)i;
                        int r = StoreSlow(va, 1, x[d.Rs2]);
                        if (r == StoreFault)
                            goto Faulted;
                        if (r == StoreEndsBlock)
                            goto Sequential;
                        continue;
                    }

                case Op.Fence:
                    continue;
                case Op.FenceI:
                    goto Sequential; // stores already dropped stale code; only the block must end

                case Op.Illegal:
                    _trapCause = Cause.IllegalInstruction;
                    _trapValue = d.Raw;
                    goto Faulted;

                default:
                    _inBlock = (uint)i;
                    switch (ExecuteRare(ref d, pc0 + d.PcOffset))
                    {
                        case Outcome.Next: continue;
                        case Outcome.Fault: goto Faulted;
                        case Outcome.Sequential:
                            _pc = pc0 + d.PcOffset + d.Length;
                            goto LeaveAfter;
                        case Outcome.Jumped: goto LeaveAfter;
                        case Outcome.Wait:
                            _executed += (uint)i + 1;
                            _inBlock = 0;
                            return StopReason.WaitForInterrupt;
                        default:
                            _executed += (uint)i;
                            _inBlock = 0;
                            _pc = pc0 + d.PcOffset;
                            return StopReason.EnvironmentCall;
                    }
            }
        }
        _pc = pc0 + (ulong)(n < insns.Length ? insns[n].PcOffset : block.EndOffset);
        _executed += (uint)n;
        _inBlock = 0;
        if (n < insns.Length)
            return StopReason.BudgetSpent;
        goto Chain;

    Sequential:
        {
            ref Insn d = ref Unsafe.Add(ref first, i);
            _pc = pc0 + d.PcOffset + d.Length;
        }
    Jumped:
        _executed += (uint)i + 1;
        _inBlock = 0;
    Chain:
        if (_stopRequested || _interruptPending || _executed >= target)
            return StopReason.BudgetSpent;
        {
            var next = block.Successor(_pc, _epoch);
            if (next is null)
            {
                next = FetchBlock();
                if (next is null)
                    return StopReason.BudgetSpent; // the fetch trapped; the outer loop goes on
                block.Link(_pc, _epoch, next);
            }
            block = next;
        }
        goto NextBlock;

        // After an instruction that may have changed privilege, translation or interrupt state.
    LeaveAfter:
        _executed += (uint)i + 1;
        _inBlock = 0;
        return StopReason.BudgetSpent;

    Faulted:
        _executed += (uint)i;
        _inBlock = 0;
        RaiseException(_trapCause, _trapValue, pc0 + Unsafe.Add(ref first, i).PcOffset);
        return StopReason.BudgetSpent;
    }

    private enum Outcome
    {
        Next,
        Fault,
        Sequential,
        Jumped,
        Wait,
        Ecall,
    }

    // Everything not on the hot path: system instructions, CSRs, atomics and floating point.
    private Outcome ExecuteRare(ref Insn d, ulong pc)
    {
        switch (d.Op)
        {
            case Op.Ecall:
                if (((InterceptEcallFrom >> (int)_priv) & 1) != 0)
                    return Outcome.Ecall;
                Fault(_priv switch
                {
                    Privilege.User => Cause.EcallFromU,
                    Privilege.Supervisor => Cause.EcallFromS,
                    _ => Cause.EcallFromM,
                }, 0);
                return Outcome.Fault;
            case Op.Ebreak:
                Fault(Cause.Breakpoint, pc);
                return Outcome.Fault;
            case Op.Mret:
                return Mret() ? Outcome.Jumped : IllegalOutcome(ref d);
            case Op.Sret:
                return Sret() ? Outcome.Jumped : IllegalOutcome(ref d);
            case Op.Wfi:
                if (_priv == Privilege.User || (_priv == Privilege.Supervisor && (_mstatus & Mstatus.Tw) != 0))
                    return IllegalOutcome(ref d);
                _pc = pc + d.Length;
                if ((Mip & _mie) != 0)
                    return Outcome.Jumped;
                WaitingForInterrupt = true;
                return Outcome.Wait;
            case Op.SfenceVma:
                if (_priv == Privilege.User || (_priv == Privilege.Supervisor && (_mstatus & Mstatus.Tvm) != 0))
                    return IllegalOutcome(ref d);
                if (d.Rs1 == 0)
                    FlushPagedTlb();
                else
                    FlushTlbPage(_x[d.Rs1]);
                return Outcome.Sequential;
            case Op.Csrrw or Op.Csrrs or Op.Csrrc or Op.Csrrwi or Op.Csrrsi or Op.Csrrci:
                return ExecuteCsr(ref d) ? Outcome.Sequential : Outcome.Fault;
            case >= Op.LrW and <= Op.AmomaxuD:
                return ExecuteAtomic(ref d);
            case >= Op.Flw and <= Op.FmvDX:
                return ExecuteFloat(ref d);
            default:
                return IllegalOutcome(ref d);
        }
    }

    private Outcome IllegalOutcome(ref Insn d)
    {
        Fault(Cause.IllegalInstruction, d.Raw);
        return Outcome.Fault;
    }
}
