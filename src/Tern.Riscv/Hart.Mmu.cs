// Address translation (Sv39 with hardware A/D updates), the software TLB, the slow paths of
// loads and stores (misaligned, MMIO, watched pages) and instruction fetch into the code cache.
//
// The TLB keeps one table per access kind (read, write, execute) and privilege level, so that
// a trap or a return between U and S does not flush anything. An entry maps a virtual page to
// a host pointer: host = Addend + va. Write entries exist only for RAM pages that are already
// marked dirty and hold no predecoded code, so the store fast path needs no further checks.
using System.Runtime.InteropServices;

namespace Tern.Riscv;

public sealed unsafe partial class Hart
{
    private const int TlbSize = 256;
    private const int TlbSets = 12; // 3 access kinds x 4 privilege slots (U, S, unused, M)
    private const ulong PageMask = ~0xFFFUL;
    private const int AccessRead = 0, AccessWrite = 1, AccessExec = 2;

    private const ulong PteV = 1, PteR = 2, PteW = 4, PteX = 8, PteU = 16, PteA = 64, PteD = 128;

    [StructLayout(LayoutKind.Sequential)]
    private struct TlbEntry
    {
        public ulong Tag;
        public long Addend;
    }

    private TlbEntry* _tlb;
    private TlbEntry* _readTlb;
    private TlbEntry* _writeTlb;
    private TlbEntry* _execTlb;
    private Privilege _dataPriv;
    private bool _superpageCached;

    private TlbEntry* Table(int access, Privilege p) => _tlb + ((access * 4) + (int)p) * TlbSize;

    private void UpdateTranslationMode()
    {
        _dataPriv = _priv == Privilege.Machine && (_mstatus & Mstatus.Mprv) != 0
            ? (Privilege)((_mstatus >> Mstatus.MppShift) & 3)
            : _priv;
        _readTlb = Table(AccessRead, _dataPriv);
        _writeTlb = Table(AccessWrite, _dataPriv);
        _execTlb = Table(AccessExec, _priv);
    }

    /// <summary>Drops every cached translation (all kinds, all privilege levels).</summary>
    public void FlushTlb()
    {
        _epoch = _code.NewEpoch();
        for (int i = 0; i < TlbSets * TlbSize; i++)
            _tlb[i].Tag = ulong.MaxValue;
        _superpageCached = false;
    }

    // Translations of U and S change with satp, SUM and MXR; M-mode entries are identity maps.
    private void FlushPagedTlb()
    {
        _epoch = _code.NewEpoch();
        for (int access = 0; access < 3; access++)
        {
            for (int p = 0; p <= 1; p++)
            {
                var t = Table(access, (Privilege)p);
                for (int i = 0; i < TlbSize; i++)
                    t[i].Tag = ulong.MaxValue;
            }
        }
        _superpageCached = false;
    }

    private void FlushTlbPage(ulong va)
    {
        _epoch = _code.NewEpoch();
        if (_superpageCached)
        {
            FlushPagedTlb();
            return;
        }
        ulong tag = va & PageMask;
        int index = (int)((va >> 12) & (TlbSize - 1));
        for (int access = 0; access < 3; access++)
        {
            for (int p = 0; p <= 1; p++)
            {
                var e = Table(access, (Privilege)p) + index;
                if (e->Tag == tag)
                    e->Tag = ulong.MaxValue;
            }
        }
    }

    /// <summary>Drops fast-path write mappings so the next store to each page marks it dirty again.</summary>
    public void FlushWriteTlb()
    {
        for (int p = 0; p < 4; p++)
        {
            var t = Table(AccessWrite, (Privilege)p);
            for (int i = 0; i < TlbSize; i++)
                t[i].Tag = ulong.MaxValue;
        }
    }

    private void OnCodePageRegistered(int page)
    {
        long hostPage = (long)(_ram + ((long)page << GuestMemory.PageShift));
        for (int p = 0; p < 4; p++)
        {
            var t = Table(AccessWrite, (Privilege)p);
            for (int i = 0; i < TlbSize; i++)
            {
                if (t[i].Tag != ulong.MaxValue && t[i].Addend + (long)t[i].Tag == hostPage)
                    t[i].Tag = ulong.MaxValue;
            }
        }
    }

    private void Fill(TlbEntry* table, ulong va, ulong ramOffset)
    {
        var e = table + ((va >> 12) & (TlbSize - 1));
        e->Tag = va & PageMask;
        e->Addend = (long)(_ram + (ramOffset & PageMask)) - (long)(va & PageMask);
    }

    private bool Fault(ulong cause, ulong tval)
    {
        _trapCause = cause;
        _trapValue = tval;
        return false;
    }

    private static ulong PageFaultCause(int access) =>
        access == AccessExec ? Cause.InstructionPageFault : access == AccessRead ? Cause.LoadPageFault : Cause.StorePageFault;

    private static ulong AccessFaultCause(int access) =>
        access == AccessExec ? Cause.InstructionAccessFault : access == AccessRead ? Cause.LoadAccessFault : Cause.StoreAccessFault;

    /// <summary>Translates a virtual address; on failure sets the trap cause and value and returns false.</summary>
    private bool Translate(ulong va, int access, Privilege p, out ulong pa)
    {
        if (p == Privilege.Machine || (_satp >> 60) != 8)
        {
            pa = va;
            return true;
        }
        pa = 0;
        if (((long)va << 25 >> 25) != (long)va)
            return Fault(PageFaultCause(access), va);
        ulong table = (_satp & 0xFFF_FFFF_FFFFUL) << 12;
        for (int level = 2; level >= 0; level--)
        {
            ulong pteAddr = table + (((va >> (12 + (9 * level))) & 0x1FF) * 8);
            ulong off = pteAddr - _ramBase;
            if (off >= _ramSize)
                return Fault(AccessFaultCause(access), va);
            _mem.EnsurePresent((int)(off >> GuestMemory.PageShift));
            ulong* slot = (ulong*)(_ram + off);
            ulong pte = *slot;
            if ((pte & PteV) == 0 || (pte & (PteR | PteW)) == PteW || (pte >> 54) != 0)
                return Fault(PageFaultCause(access), va);
            ulong ppn = (pte >> 10) & 0xFFF_FFFF_FFFFUL;
            if ((pte & (PteR | PteX)) == 0)
            {
                table = ppn << 12;
                continue;
            }
            if (!Permitted(pte, access, p))
                return Fault(PageFaultCause(access), va);
            ulong offsetMask = (1UL << (12 + (9 * level))) - 1;
            if (((ppn << 12) & offsetMask) != 0)
                return Fault(PageFaultCause(access), va); // misaligned superpage
            ulong updated = pte | PteA | (access == AccessWrite ? PteD : 0);
            if (updated != pte)
            {
                *slot = updated;
                _mem.NoteWritten(pteAddr, 8);
            }
            if (level > 0)
                _superpageCached = true;
            pa = ((ppn << 12) & ~offsetMask) | (va & offsetMask);
            return true;
        }
        return Fault(PageFaultCause(access), va); // a pointer at level 0
    }

    private bool Permitted(ulong pte, int access, Privilege p)
    {
        bool user = (pte & PteU) != 0;
        if (access == AccessExec)
            return (pte & PteX) != 0 && user == (p == Privilege.User);
        if (p == Privilege.User ? !user : user && (_mstatus & Mstatus.Sum) == 0)
            return false;
        if (access == AccessRead)
            return (pte & PteR) != 0 || ((pte & PteX) != 0 && (_mstatus & Mstatus.Mxr) != 0);
        return (pte & PteW) != 0;
    }

    private ulong ReadRam(ulong off, int size) => size switch
    {
        1 => _ram[off],
        2 => *(ushort*)(_ram + off),
        4 => *(uint*)(_ram + off),
        _ => *(ulong*)(_ram + off),
    };

    private void WriteRam(ulong off, int size, ulong value)
    {
        switch (size)
        {
            case 1: _ram[off] = (byte)value; break;
            case 2: *(ushort*)(_ram + off) = (ushort)value; break;
            case 4: *(uint*)(_ram + off) = (uint)value; break;
            default: *(ulong*)(_ram + off) = value; break;
        }
    }

    /// <summary>A load that missed the TLB fast path. The value is zero-extended; the caller sign-extends.</summary>
    private bool LoadSlow(ulong va, int size, out ulong value)
    {
        value = 0;
        if ((va & (ulong)(size - 1)) != 0)
        {
            // Misaligned loads are performed (as QEMU does), byte by byte; a fault names the first bad byte.
            for (int k = 0; k < size; k++)
            {
                if (!LoadSlow(va + (ulong)k, 1, out ulong b))
                    return false;
                value |= b << (8 * k);
            }
            return true;
        }
        if (!Translate(va, AccessRead, _dataPriv, out ulong pa))
            return false;
        ulong off = pa - _ramBase;
        if (off < _ramSize)
        {
            _mem.EnsurePresent((int)(off >> GuestMemory.PageShift));
            Fill(_readTlb, va, off);
            value = ReadRam(off, size);
            return true;
        }
        if (_bus.TryRead(pa, size, out value))
            return true;
        return Fault(Cause.LoadAccessFault, va);
    }

    private const int StoreFault = 0, StoreDone = 1, StoreEndsBlock = 2;

    /// <summary>A store that missed the TLB fast path. Returns StoreFault, StoreDone or StoreEndsBlock (MMIO or a watched page).</summary>
    private int StoreSlow(ulong va, int size, ulong value)
    {
        if ((va & (ulong)(size - 1)) != 0)
        {
            // Check both ends first so that a faulting misaligned store writes nothing.
            if (!Translate(va, AccessWrite, _dataPriv, out _) || !Translate(va + (ulong)size - 1, AccessWrite, _dataPriv, out _))
                return StoreFault;
            int result = StoreDone;
            for (int k = 0; k < size; k++)
            {
                int r = StoreSlow(va + (ulong)k, 1, value >> (8 * k));
                if (r == StoreFault)
                    return StoreFault;
                result = Math.Max(result, r);
            }
            return result;
        }
        if (!Translate(va, AccessWrite, _dataPriv, out ulong pa))
            return StoreFault;
        ulong off = pa - _ramBase;
        if (off < _ramSize)
        {
            _mem.EnsurePresent((int)(off >> GuestMemory.PageShift));
            WriteRam(off, size, value);
            int page = (int)(off >> GuestMemory.PageShift);
            _mem.MarkDirty(page);
            byte flags = _mem.Flags(page);
            if (flags == 0)
            {
                Fill(_writeTlb, va, off);
                return StoreDone;
            }
            if ((flags & GuestMemory.FlagCode) != 0 && _code.Overlaps(page, (int)(off & 0xFFF), size))
                _mem.InvalidateCode(page);
            if ((flags & GuestMemory.FlagWatch) != 0)
            {
                _mem.WatchedWrite?.Invoke(pa, size);
                return StoreEndsBlock;
            }
            return StoreDone;
        }
        if (_bus.TryWrite(pa, size, value))
            return StoreEndsBlock;
        Fault(Cause.StoreAccessFault, va);
        return StoreFault;
    }

    /// <summary>Finds (or builds) the block at pc. Returns null after raising a fetch exception.</summary>
    private Block? FetchBlock()
    {
        ulong pc = _pc;
        var e = _execTlb + ((pc >> 12) & (TlbSize - 1));
        long addend;
        if (e->Tag == (pc & PageMask))
        {
            addend = e->Addend;
        }
        else
        {
            if (!Translate(pc, AccessExec, _priv, out ulong pa))
            {
                RaiseException(_trapCause, _trapValue, pc);
                return null;
            }
            ulong ramOff = pa - _ramBase;
            if (ramOff >= _ramSize)
            {
                RaiseException(Cause.InstructionAccessFault, pc, pc);
                return null;
            }
            _mem.EnsurePresent((int)(ramOff >> GuestMemory.PageShift));
            Fill(_execTlb, pc, ramOff);
            addend = e->Addend;
        }
        ulong off = (ulong)((byte*)(addend + (long)pc) - _ram);
        int page = (int)(off >> GuestMemory.PageShift);
        int pageOffset = (int)(off & 0xFFF);
        return _code.Lookup(page, pageOffset) ?? BuildBlock(page, pageOffset, pc);
    }

    private Block? BuildBlock(int page, int pageOffset, ulong pc)
    {
        byte* pageBase = _ram + ((long)page << GuestMemory.PageShift);
        var insns = new List<Insn>(16);
        int o = pageOffset;
        while (o <= GuestMemory.PageSize - 2)
        {
            uint raw = *(ushort*)(pageBase + o);
            if (Decoder.IsFullLength(raw))
            {
                if (o > GuestMemory.PageSize - 4)
                    break; // crosses into the next page: handled on its own below
                raw = *(uint*)(pageBase + o);
            }
            var d = Decoder.Decode(raw);
            d.PcOffset = (ushort)(o - pageOffset);
            insns.Add(d);
            o += d.Length;
            if (Decoder.EndsBlock(d.Op) || insns.Count >= MaxBlockInstructions)
                break;
        }
        if (insns.Count == 0)
            return BuildPageCrossingBlock(pageBase, pc);
        var block = new Block([.. insns], o - pageOffset);
        _mem.SetCodeFlag(page);
        _code.Insert(page, pageOffset, block);
        return block;
    }

    // A 32-bit instruction whose upper half lies on the next page: fetched through translation
    // each time and never cached, since the two pages can be remapped independently.
    private Block? BuildPageCrossingBlock(byte* pageBase, ulong pc)
    {
        uint low = *(ushort*)(pageBase + GuestMemory.PageSize - 2);
        ulong next = pc + 2;
        if (!Translate(next, AccessExec, _priv, out ulong pa))
        {
            RaiseException(_trapCause, _trapValue, pc);
            return null;
        }
        ulong off = pa - _ramBase;
        if (off >= _ramSize)
        {
            RaiseException(Cause.InstructionAccessFault, next, pc);
            return null;
        }
        _mem.EnsurePresent((int)(off >> GuestMemory.PageShift));
        uint raw = low | ((uint)*(ushort*)(_ram + off) << 16);
        var d = Decoder.Decode(raw);
        return new Block([d], 4);
    }
}
