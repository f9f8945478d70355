// The whole machine's state apart from RAM, as one record of the records each part saves for
// itself. RAM travels beside it, page by page, in the same stream (see SnapshotFile).
using Tern.Machine.Devices.Clint;
using Tern.Machine.Devices.GoldfishRtc;
using Tern.Machine.Devices.Plic;
using Tern.Machine.Devices.Uart16550;
using Tern.Machine.Devices.Virtio;
using Tern.Riscv;

namespace Tern.Machine.Snapshot;

/// <summary>The configuration a state belongs to: a state only loads into a machine of this shape.</summary>
public sealed record MachineShape(ulong MemoryBytes, int Harts, ClockMode Clock);

/// <summary>Everything but RAM. Version 1.</summary>
public sealed record MachineState(
    MachineShape Shape,
    GuestClockState Clock,
    HartState[] Harts,
    ClintState Clint,
    PlicState Plic,
    Uart16550State Uart,
    GoldfishRtcState Rtc,
    MachineStatsState Stats,
    VirtioSlotState[] Virtio);

/// <summary>One virtio slot: its transport and, when a device is plugged in, that device's own record.</summary>
public sealed record VirtioSlotState(VirtioMmioState Transport, VirtioBlkState? Blk, VirtioNetState? Net, VirtioRngState? Rng);
