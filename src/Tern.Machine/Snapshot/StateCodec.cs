// Field-by-field encoding of MachineState, in one place so the stream layout can be read
// from top to bottom. docs/snapshot-format.md describes the same layout in prose; a change
// here must bump SnapshotFile.Version and keep reading the older versions.
using Tern.Machine.Devices.Clint;
using Tern.Machine.Devices.GoldfishRtc;
using Tern.Machine.Devices.Plic;
using Tern.Machine.Devices.Uart16550;
using Tern.Machine.Devices.Virtio;
using Tern.Riscv;

namespace Tern.Machine.Snapshot;

/// <summary>Encodes and decodes <see cref="MachineState"/>.</summary>
public static class StateCodec
{
    /// <summary>Encodes the machine's shape.</summary>
    public static void Write(StateWriter w, MachineShape s)
    {
        ArgumentNullException.ThrowIfNull(w);
        ArgumentNullException.ThrowIfNull(s);
        w.U64(s.MemoryBytes);
        w.U32((uint)s.Harts);
        w.U8((byte)s.Clock);
    }

    /// <summary>Decodes the machine's shape, checking it is one the board supports.</summary>
    public static MachineShape ReadShape(StateReader r)
    {
        ArgumentNullException.ThrowIfNull(r);
        ulong mem = r.U64();
        uint harts = r.U32();
        byte clock = r.U8();
        if (mem < VirtMachine.MinMemory || mem > VirtMachine.MaxMemory || mem % 4096 != 0)
            throw new InvalidSnapshotException($"invalid memory size {mem}");
        if (harts is < 1 or > Board.MaxHarts)
            throw new InvalidSnapshotException($"invalid hart count {harts}");
        if (clock > (byte)ClockMode.Icount)
            throw new InvalidSnapshotException($"invalid clock mode {clock}");
        return new MachineShape(mem, (int)harts, (ClockMode)clock);
    }

    /// <summary>Encodes everything but the shape.</summary>
    public static void Write(StateWriter w, MachineState s)
    {
        ArgumentNullException.ThrowIfNull(w);
        ArgumentNullException.ThrowIfNull(s);
        w.U64(s.Clock.Ticks);
        w.U64(s.Clock.Instructions);
        foreach (var h in s.Harts)
            Write(w, h);
        w.U64s(s.Clint.Mtimecmp);
        w.Bools(s.Clint.Msip);
        var p = s.Plic;
        w.U32s(p.Priority);
        w.Bools(p.Level);
        w.Bools(p.Pending);
        w.Bools(p.Claimed);
        w.U32((uint)p.Enable.Length);
        foreach (var e in p.Enable)
            w.U32s(e);
        w.U32s(p.Threshold);
        var u = s.Uart;
        foreach (var b in new[] { u.Ier, u.Lcr, u.Mcr, u.Scr, u.Dll, u.Dlm, u.Fcr, u.Msr })
            w.U8(b);
        w.Bool(u.ThrPending);
        w.Bool(u.Overrun);
        w.Bytes(u.Received);
        var rtc = s.Rtc;
        w.I64(rtc.Now);
        w.U32(rtc.LatchedHigh);
        w.U32(rtc.AlarmHigh);
        w.I64(rtc.Alarm);
        w.Bool(rtc.IrqEnabled);
        w.Bool(rtc.IrqPending);
        w.I64s(s.Stats.Exceptions);
        w.I64s(s.Stats.Interrupts);
        w.U32((uint)s.Stats.Mmio.Count);
        foreach (var (name, count) in s.Stats.Mmio.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            w.String(name);
            w.I64(count);
        }
        w.I64(s.Stats.WfiHalts);
        w.U32((uint)s.Virtio.Length);
        foreach (var v in s.Virtio)
            Write(w, v);
    }

    private static void Write(StateWriter w, VirtioSlotState v)
    {
        var t = v.Transport;
        w.U32((uint)t.Version);
        w.U32(t.DeviceId);
        w.U32(t.Status);
        w.U32(t.DeviceFeaturesSel);
        w.U32(t.DriverFeaturesSel);
        w.U64(t.DriverFeatures);
        w.U32(t.QueueSel);
        w.U32(t.InterruptStatus);
        w.U32(t.ConfigGeneration);
        w.U32(t.GuestPageSize);
        w.U32((uint)t.Queues.Length);
        foreach (var q in t.Queues)
        {
            w.U32(q.Num);
            w.Bool(q.Ready);
            w.U64(q.Desc);
            w.U64(q.Driver);
            w.U64(q.Device);
            w.U32(q.Pfn);
            w.U32(q.Align);
            w.U32(q.LastAvail);
            w.U32(q.UsedIndex);
            w.U32(q.SignalledUsed);
        }
        if (v.Blk is { } blk)
        {
            w.U8(1);
            w.U64(blk.CapacitySectors);
            w.Bool(blk.ReadOnly);
            w.I64s([blk.Reads, blk.Writes, blk.Flushes, blk.Failures]);
        }
        else if (v.Net is { } net)
        {
            w.U8(2);
            w.Bytes(net.Mac);
            w.I64s([net.FramesSent, net.FramesReceived, net.FramesDropped]);
        }
        else if (v.Rng is { } rng)
        {
            w.U8(3);
            w.I64(rng.BytesProvided);
        }
        else
        {
            w.U8(0);
        }
    }

    private static VirtioSlotState ReadVirtio(StateReader r)
    {
        int version = (int)r.U32();
        uint deviceId = r.U32(), status = r.U32(), dfs = r.U32(), drfs = r.U32();
        ulong driverFeatures = r.U64();
        uint queueSel = r.U32(), interruptStatus = r.U32(), generation = r.U32(), pageSize = r.U32();
        uint queues = r.U32();
        if (queues > 16)
            throw new InvalidSnapshotException($"virtio slot has {queues} queues");
        var qs = new VirtqueueState[queues];
        for (int i = 0; i < qs.Length; i++)
        {
            qs[i] = new VirtqueueState(r.U32(), r.Bool(), r.U64(), r.U64(), r.U64(), r.U32(), r.U32(), (ushort)r.U32(), (ushort)r.U32(), (ushort)r.U32());
        }
        var transport = new VirtioMmioState(version, deviceId, status, dfs, drfs, driverFeatures, queueSel, interruptStatus, generation, pageSize, qs);
        switch (r.U8())
        {
            case 0:
                return new VirtioSlotState(transport, null, null, null);
            case 1:
                {
                    ulong capacity = r.U64();
                    bool ro = r.Bool();
                    var c = r.I64s();
                    if (c.Length != 4)
                        throw new InvalidSnapshotException("virtio-blk counters have the wrong shape");
                    return new VirtioSlotState(transport, new VirtioBlkState(capacity, ro, c[0], c[1], c[2], c[3]), null, null);
                }
            case 2:
                {
                    var mac = r.Bytes();
                    var c = r.I64s();
                    if (mac.Length != 6 || c.Length != 3)
                        throw new InvalidSnapshotException("virtio-net state has the wrong shape");
                    return new VirtioSlotState(transport, null, new VirtioNetState(mac, c[0], c[1], c[2]), null);
                }
            case 3:
                return new VirtioSlotState(transport, null, null, new VirtioRngState(r.I64()));
            case var kind:
                throw new InvalidSnapshotException($"unknown virtio device kind {kind}");
        }
    }

    /// <summary>Decodes everything but the shape, for a machine of <paramref name="shape"/>.</summary>
    public static MachineState Read(StateReader r, MachineShape shape)
    {
        ArgumentNullException.ThrowIfNull(r);
        ArgumentNullException.ThrowIfNull(shape);
        var clock = new GuestClockState(r.U64(), r.U64());
        var harts = new HartState[shape.Harts];
        for (int i = 0; i < harts.Length; i++)
            harts[i] = ReadHart(r);
        var clint = new ClintState(r.U64s(), r.Bools());
        var priority = r.U32s();
        var level = r.Bools();
        var pending = r.Bools();
        var claimed = r.Bools();
        uint contexts = r.U32();
        if (contexts != shape.Harts * 2)
            throw new InvalidSnapshotException($"PLIC state has {contexts} contexts for {shape.Harts} harts");
        var enable = new uint[contexts][];
        for (int c = 0; c < contexts; c++)
            enable[c] = r.U32s();
        var plic = new PlicState(priority, level, pending, claimed, enable, r.U32s());
        var uart = new Uart16550State(r.U8(), r.U8(), r.U8(), r.U8(), r.U8(), r.U8(), r.U8(), r.U8(), r.Bool(), r.Bool(), r.Bytes());
        var rtc = new GoldfishRtcState(r.I64(), r.U32(), r.U32(), r.I64(), r.Bool(), r.Bool());
        var exceptions = r.I64s();
        var interrupts = r.I64s();
        uint mmioCount = r.U32();
        if (mmioCount > 64)
            throw new InvalidSnapshotException($"statistics name {mmioCount} devices");
        var mmio = new Dictionary<string, long>(StringComparer.Ordinal);
        for (int i = 0; i < mmioCount; i++)
            mmio[r.String()] = r.I64();
        var stats = new MachineStatsState(exceptions, interrupts, mmio, r.I64());
        uint slots = r.U32();
        if (slots != Board.VirtioSlots)
            throw new InvalidSnapshotException($"state has {slots} virtio slots, the board has {Board.VirtioSlots}");
        var virtio = new VirtioSlotState[slots];
        for (int i = 0; i < virtio.Length; i++)
            virtio[i] = ReadVirtio(r);
        return new MachineState(shape, clock, harts, clint, plic, uart, rtc, stats, virtio);
    }

    private static void Write(StateWriter w, HartState h)
    {
        w.U64s(h.X);
        w.U64s(h.F);
        w.U64(h.Pc);
        w.U8((byte)h.Privilege);
        w.U32(h.Fcsr);
        foreach (ulong v in new[]
        {
            h.Mstatus, h.Medeleg, h.Mideleg, h.Mie, h.Mip, h.Mtvec, h.Mscratch, h.Mepc, h.Mcause, h.Mtval,
            h.Menvcfg, h.Stvec, h.Sscratch, h.Sepc, h.Scause, h.Stval, h.Senvcfg, h.Satp, h.Mcycle, h.Minstret, h.Reservation,
            h.Stimecmp,
        })
        {
            w.U64(v);
        }
        w.U32(h.Mcounteren);
        w.U32(h.Mcountinhibit);
        w.U32(h.Scounteren);
        w.U64s(h.Pmpcfg);
        w.U64s(h.Pmpaddr);
        w.Bool(h.WaitingForInterrupt);
    }

    private static HartState ReadHart(StateReader r)
    {
        var x = r.U64s();
        var f = r.U64s();
        ulong pc = r.U64();
        byte priv = r.U8();
        uint fcsr = r.U32();
        var v = new ulong[22];
        for (int i = 0; i < v.Length; i++)
            v[i] = r.U64();
        uint mcounteren = r.U32(), mcountinhibit = r.U32(), scounteren = r.U32();
        var pmpcfg = r.U64s();
        var pmpaddr = r.U64s();
        bool wfi = r.Bool();
        if (x.Length != 32 || f.Length != 32 || pmpcfg.Length != 16 || pmpaddr.Length != 64)
            throw new InvalidSnapshotException("hart state has register files of the wrong size");
        if (priv is not (0 or 1 or 3))
            throw new InvalidSnapshotException($"hart state has invalid privilege level {priv}");
        return new HartState
        {
            X = x,
            F = f,
            Pc = pc,
            Privilege = (Privilege)priv,
            Fcsr = fcsr,
            Mstatus = v[0],
            Medeleg = v[1],
            Mideleg = v[2],
            Mie = v[3],
            Mip = v[4],
            Mtvec = v[5],
            Mscratch = v[6],
            Mepc = v[7],
            Mcause = v[8],
            Mtval = v[9],
            Menvcfg = v[10],
            Stvec = v[11],
            Sscratch = v[12],
            Sepc = v[13],
            Scause = v[14],
            Stval = v[15],
            Senvcfg = v[16],
            Satp = v[17],
            Mcycle = v[18],
            Minstret = v[19],
            Reservation = v[20],
            Stimecmp = v[21],
            Mcounteren = mcounteren,
            Mcountinhibit = mcountinhibit,
            Scounteren = scounteren,
            Pmpcfg = pmpcfg,
            Pmpaddr = pmpaddr,
            WaitingForInterrupt = wfi,
        };
    }
}
