// The generated device tree, decompiled by the reference tool (dtc), describes the board as
// QEMU's 'virt' does.
using System.Diagnostics;
using Tern.Machine.Boot;

namespace Tern.Machine.Tests;

public class DeviceTreeTests
{
    private static string Decompile(byte[] dtb)
    {
        string path = Path.GetTempFileName();
        try
        {
            File.WriteAllBytes(path, dtb);
            var psi = new ProcessStartInfo("dtc") { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in new[] { "-I", "dtb", "-O", "dts", path })
                psi.ArgumentList.Add(a);
            Process p;
            try
            {
                p = Process.Start(psi)!;
            }
            catch (System.ComponentModel.Win32Exception)
            {
                Assert.Fail("dtc is missing: install Debian's 'device-tree-compiler' package (.ci/run does)");
                throw;
            }
            using (p)
            {
                string dts = p.StandardOutput.ReadToEnd();
                string err = p.StandardError.ReadToEnd();
                p.WaitForExit();
                Assert.True(p.ExitCode == 0, $"dtc rejected the blob: {err}");
                Assert.DoesNotContain("Warning", err, StringComparison.Ordinal);
                return dts;
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Describes_memory_harts_devices_and_chosen_as_qemu_virt_does()
    {
        var dts = Decompile(DeviceTree.Build(new DeviceTreeConfig
        {
            MemoryBytes = 512UL << 20,
            Harts = 4,
            BootArgs = "console=ttyS0 quiet",
            Initrd = (0x8820_0000, 0x8830_0000),
        }));
        Assert.Contains("memory@80000000", dts, StringComparison.Ordinal);
        Assert.Contains("reg = <0x00 0x80000000 0x00 0x20000000>;", dts, StringComparison.Ordinal);
        for (int h = 0; h < 4; h++)
            Assert.Contains($"cpu@{h} {{", dts, StringComparison.Ordinal);
        Assert.DoesNotContain("cpu@4", dts, StringComparison.Ordinal);
        Assert.Contains("timebase-frequency = <0x989680>;", dts, StringComparison.Ordinal);
        Assert.Contains("riscv,isa = \"rv64imafdc_zicsr_zifencei_sstc\";", dts, StringComparison.Ordinal);
        Assert.Contains("mmu-type = \"riscv,sv39\";", dts, StringComparison.Ordinal);
        Assert.Contains("serial@10000000", dts, StringComparison.Ordinal);
        Assert.Contains("plic@c000000", dts, StringComparison.Ordinal);
        Assert.Contains("clint@2000000", dts, StringComparison.Ordinal);
        Assert.Contains("rtc@101000", dts, StringComparison.Ordinal);
        Assert.Contains("compatible = \"sifive,test1\\0sifive,test0\\0syscon\";", dts, StringComparison.Ordinal);
        for (int slot = 0; slot < 8; slot++)
            Assert.Contains($"virtio_mmio@{0x10001000 + (slot * 0x1000):x}", dts, StringComparison.Ordinal);
        Assert.Contains("bootargs = \"console=ttyS0 quiet\";", dts, StringComparison.Ordinal);
        Assert.Contains("linux,initrd-start = <0x00 0x88200000>;", dts, StringComparison.Ordinal);
        Assert.Contains("stdout-path = \"/soc/serial@10000000\";", dts, StringComparison.Ordinal);
        // Two PLIC contexts (M and S external) and two CLINT contexts (M software and timer) per hart.
        int plicLine = dts.IndexOf("plic@c000000", StringComparison.Ordinal);
        string plic = dts[plicLine..dts.IndexOf("};", plicLine, StringComparison.Ordinal)];
        Assert.Contains("0x0b", plic, StringComparison.Ordinal);
        Assert.Contains("0x09", plic, StringComparison.Ordinal);
    }

    [Fact]
    public void Refuses_a_hart_count_the_board_cannot_have()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => DeviceTree.Build(new DeviceTreeConfig { MemoryBytes = 1 << 30, Harts = 9 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => DeviceTree.Build(new DeviceTreeConfig { MemoryBytes = 1 << 30, Harts = 0 }));
    }
}
