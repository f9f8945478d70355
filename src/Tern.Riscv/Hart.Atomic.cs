// The A extension. One hart of a machine runs at a time, so an AMO is a plain
// read-modify-write; LR/SC keep a real reservation on the physical address.
namespace Tern.Riscv;

public sealed unsafe partial class Hart
{
    private Outcome ExecuteAtomic(ref Insn d)
    {
        bool isDouble = d.Op >= Op.LrD;
        int size = isDouble ? 8 : 4;
        ulong va = _x[d.Rs1];
        bool isLr = d.Op is Op.LrW or Op.LrD;
        if ((va & (ulong)(size - 1)) != 0)
        {
            Fault(isLr ? Cause.LoadMisaligned : Cause.StoreMisaligned, va);
            return Outcome.Fault;
        }
        int access = isLr ? AccessRead : AccessWrite;
        if (!Translate(va, access, _dataPriv, out ulong pa))
            return Outcome.Fault;
        ulong off = pa - _ramBase;
        if (off >= _ramSize)
        {
            Fault(isLr ? Cause.LoadAccessFault : Cause.StoreAccessFault, va);
            return Outcome.Fault;
        }
        _mem.EnsurePresent((int)(off >> GuestMemory.PageShift));
        if (isLr)
        {
            _x[d.Rd] = Extend(ReadRam(off, size), isDouble);
            _reservation = pa;
            return Outcome.Next;
        }
        if (d.Op is Op.ScW or Op.ScD)
        {
            bool success = _reservation == pa;
            _reservation = ulong.MaxValue;
            if (success)
            {
                WriteRam(off, size, _x[d.Rs2]);
                return AfterAtomicStore(ref d, pa, off, size, 0);
            }
            _x[d.Rd] = 1;
            return Outcome.Next;
        }
        ulong old = ReadRam(off, size);
        ulong src = _x[d.Rs2];
        ulong result = d.Op switch
        {
            Op.AmoswapW or Op.AmoswapD => src,
            Op.AmoaddW or Op.AmoaddD => old + src,
            Op.AmoxorW or Op.AmoxorD => old ^ src,
            Op.AmoandW or Op.AmoandD => old & src,
            Op.AmoorW or Op.AmoorD => old | src,
            Op.AmominW => (int)old < (int)src ? old : src,
            Op.AmomaxW => (int)old > (int)src ? old : src,
            Op.AmominuW => (uint)old < (uint)src ? old : src,
            Op.AmomaxuW => (uint)old > (uint)src ? old : src,
            Op.AmominD => (long)old < (long)src ? old : src,
            Op.AmomaxD => (long)old > (long)src ? old : src,
            Op.AmominuD => old < src ? old : src,
            _ => old > src ? old : src, // AmomaxuD
        };
        WriteRam(off, size, result);
        return AfterAtomicStore(ref d, pa, off, size, Extend(old, isDouble));
    }

    private static ulong Extend(ulong value, bool isDouble) => isDouble ? value : (ulong)(long)(int)(uint)value;

    private Outcome AfterAtomicStore(ref Insn d, ulong pa, ulong off, int size, ulong rdValue)
    {
        _x[d.Rd] = rdValue;
        int page = (int)(off >> GuestMemory.PageShift);
        _mem.MarkDirty(page);
        byte flags = _mem.Flags(page);
        if ((flags & GuestMemory.FlagCode) != 0 && _code.Overlaps(page, (int)(off & 0xFFF), size))
            _mem.InvalidateCode(page);
        if ((flags & GuestMemory.FlagWatch) != 0)
        {
            _mem.WatchedWrite?.Invoke(pa, size);
            return Outcome.Sequential;
        }
        return Outcome.Next;
    }

    // Loads and stores of the floating-point unit: the same fast path as the integer ones, out of line.
    private bool LoadData(ulong va, int size, out ulong value)
    {
        var e = _readTlb + ((va >> 12) & (TlbSize - 1));
        if (e->Tag == (va & (PageMask | (ulong)(size - 1))))
        {
            value = size == 8 ? *(ulong*)(e->Addend + (long)va) : *(uint*)(e->Addend + (long)va);
            return true;
        }
        return LoadSlow(va, size, out value);
    }

    private int StoreData(ulong va, int size, ulong value)
    {
        var e = _writeTlb + ((va >> 12) & (TlbSize - 1));
        if (e->Tag == (va & (PageMask | (ulong)(size - 1))))
        {
            if (size == 8)
                *(ulong*)(e->Addend + (long)va) = value;
            else
                *(uint*)(e->Addend + (long)va) = (uint)value;
            return StoreDone;
        }
        return StoreSlow(va, size, value);
    }
}
