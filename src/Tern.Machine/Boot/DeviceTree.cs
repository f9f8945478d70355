// Generates the device tree Tern hands to the guest in a1, from the Board constants: memory,
// harts with their interrupt controllers, CLINT, PLIC, UART, RTC, the test finisher with
// syscon power-off/reboot, the virtio-mmio slots, and /chosen (bootargs, initrd, stdout).
namespace Tern.Machine.Boot;

/// <summary>What the device tree describes.</summary>
public sealed record DeviceTreeConfig
{
    /// <summary>RAM size in bytes.</summary>
    public required ulong MemoryBytes { get; init; }
    /// <summary>Number of harts.</summary>
    public int Harts { get; init; } = 1;
    /// <summary>Kernel command line.</summary>
    public string BootArgs { get; init; } = "";
    /// <summary>Initrd range [start, end), if any.</summary>
    public (ulong Start, ulong End)? Initrd { get; init; }
}

/// <summary>Builds the board's DTB.</summary>
public static class DeviceTree
{
    /// <summary>The ISA string advertised for every hart.</summary>
    public const string IsaString = "rv64imafdc_zicsr_zifencei_sstc";

    /// <summary>Builds the DTB for <paramref name="config"/>.</summary>
    public static byte[] Build(DeviceTreeConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.Harts is < 1 or > Board.MaxHarts)
            throw new ArgumentOutOfRangeException(nameof(config), $"{config.Harts} harts; 1 to {Board.MaxHarts} are supported");
        var f = new FdtBuilder();
        uint[] intc = new uint[config.Harts];
        uint[] cpus = new uint[config.Harts];
        for (int h = 0; h < config.Harts; h++)
        {
            cpus[h] = f.NewPhandle();
            intc[h] = f.NewPhandle();
        }
        uint plic = f.NewPhandle();
        uint test = f.NewPhandle();

        f.Begin("")
            .Cells("#address-cells", 2).Cells("#size-cells", 2)
            .Strings("compatible", "riscv-virtio").Strings("model", "riscv-virtio,qemu");

        f.Begin("chosen").Strings("stdout-path", $"/soc/serial@{Board.UartBase:x}");
        if (config.BootArgs.Length > 0)
            f.Strings("bootargs", config.BootArgs);
        if (config.Initrd is { } initrd)
            f.U64("linux,initrd-start", initrd.Start).U64("linux,initrd-end", initrd.End);
        f.EndNodeScope();

        f.Begin($"memory@{Board.RamBase:x}").Strings("device_type", "memory").Reg(Board.RamBase, config.MemoryBytes).EndNodeScope();

        f.Begin("cpus").Cells("#address-cells", 1).Cells("#size-cells", 0).Cells("timebase-frequency", (uint)Board.TimebaseFrequency);
        for (int h = 0; h < config.Harts; h++)
        {
            f.Begin($"cpu@{h}")
                .Cells("phandle", cpus[h]).Strings("device_type", "cpu").Cells("reg", (uint)h).Strings("status", "okay")
                .Strings("compatible", "riscv").Strings("riscv,isa", IsaString).Strings("mmu-type", "riscv,sv39");
            f.Begin("interrupt-controller")
                .Cells("#address-cells", 0).Cells("#interrupt-cells", 1).Property("interrupt-controller").Strings("compatible", "riscv,cpu-intc").Cells("phandle", intc[h])
                .EndNodeScope();
            f.EndNodeScope();
        }
        f.Begin("cpu-map").Begin("cluster0");
        for (int h = 0; h < config.Harts; h++)
            f.Begin($"core{h}").Cells("cpu", cpus[h]).EndNodeScope();
        f.EndNodeScope().EndNodeScope();
        f.EndNodeScope(); // cpus

        f.Begin("poweroff").Cells("value", 0x5555).Cells("offset", 0).Cells("regmap", test).Strings("compatible", "syscon-poweroff").EndNodeScope();
        f.Begin("reboot").Cells("value", 0x7777).Cells("offset", 0).Cells("regmap", test).Strings("compatible", "syscon-reboot").EndNodeScope();

        f.Begin("soc").Cells("#address-cells", 2).Cells("#size-cells", 2).Strings("compatible", "simple-bus").Property("ranges");

        f.Begin($"rtc@{Board.RtcBase:x}").Cells("interrupts", Board.RtcIrq).Cells("interrupt-parent", plic)
            .Reg(Board.RtcBase, Board.RtcSize).Strings("compatible", "google,goldfish-rtc").EndNodeScope();

        f.Begin($"serial@{Board.UartBase:x}").Cells("interrupts", Board.UartIrq).Cells("interrupt-parent", plic)
            .Cells("clock-frequency", Board.UartClock).Reg(Board.UartBase, Board.UartSize).Strings("compatible", "ns16550a").EndNodeScope();

        f.Begin($"test@{Board.TestBase:x}").Cells("phandle", test).Reg(Board.TestBase, Board.TestSize)
            .Strings("compatible", "sifive,test1", "sifive,test0", "syscon").EndNodeScope();

        for (int slot = Board.VirtioSlots - 1; slot >= 0; slot--)
        {
            f.Begin($"virtio_mmio@{Board.VirtioSlotBase(slot):x}").Cells("interrupts", (uint)(Board.VirtioIrq + slot))
                .Cells("interrupt-parent", plic).Reg(Board.VirtioSlotBase(slot), Board.VirtioStride).Strings("compatible", "virtio,mmio")
                .EndNodeScope();
        }

        var plicContexts = new List<uint>();
        var clintContexts = new List<uint>();
        for (int h = 0; h < config.Harts; h++)
        {
            plicContexts.AddRange([intc[h], 11, intc[h], 9]);   // M external, S external
            clintContexts.AddRange([intc[h], 3, intc[h], 7]);   // M software, M timer
        }
        f.Begin($"plic@{Board.PlicBase:x}").Cells("phandle", plic).Cells("riscv,ndev", Devices.Plic.Plic.Sources - 1)
            .Reg(Board.PlicBase, Board.PlicSize).Cells("interrupts-extended", [.. plicContexts]).Property("interrupt-controller")
            .Strings("compatible", "sifive,plic-1.0.0", "riscv,plic0").Cells("#address-cells", 0).Cells("#interrupt-cells", 1).EndNodeScope();

        f.Begin($"clint@{Board.ClintBase:x}").Cells("interrupts-extended", [.. clintContexts]).Reg(Board.ClintBase, Board.ClintSize)
            .Strings("compatible", "sifive,clint0", "riscv,clint0").EndNodeScope();

        f.EndNodeScope(); // soc
        f.EndNodeScope(); // root
        return f.Finish();
    }
}
