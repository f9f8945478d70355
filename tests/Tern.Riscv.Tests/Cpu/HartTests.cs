// Behaviour of the hart that the ISA programs cannot see from inside: state save/restore,
// hostile code, budgets, WFI and the interface the machine drives.
using Tern.Riscv;
using Tern.Tests.Shared;

namespace Tern.Riscv.Tests.Cpu;

public class HartTests
{
    // A loop that mixes ALU work, loads and stores: x5 counts down, x6 accumulates, memory at 0x80080000 is updated.
    private static void LoadMixedLoop(TestHart t)
    {
        t.Code(TestHart.RamBase,
            Enc.Lui(5, 0x10),            // x5 = 0x10000 iterations
            Enc.Lui(7, 0x80080),         // x7 = 0x80080000 (sign-extended; fixed below)
            Enc.I(0x13, 7, 0, 7, 0),     // nop-ish: addi x7, x7, 0
            0x02039393,                  // slli x7, x7, 32
            0x0203D393,                  // srli x7, x7, 32  -> zero-extended 0x80080000
            Enc.Ld(8, 7, 0),             // loop: x8 = [x7]
            Enc.Add(6, 6, 8),            // x6 += x8
            Enc.Addi(8, 8, 3),           // x8 += 3
            Enc.Sd(7, 8, 0),             // [x7] = x8
            Enc.Addi(5, 5, -1),          // x5--
            0xFE0296E3,                  // bnez x5, loop (-20)
            Enc.Ecall);
    }

    [Fact]
    public void Restored_state_continues_exactly_like_an_uninterrupted_run()
    {
        using var a = new TestHart();
        using var b = new TestHart();
        LoadMixedLoop(a);
        LoadMixedLoop(b);
        a.Hart.InterceptEcallFrom = 1 << 3;
        b.Hart.InterceptEcallFrom = 1 << 3;

        Assert.Equal(StopReason.BudgetSpent, a.Hart.Run(12_345));
        var saved = a.Hart.Save();
        var ram = a.Memory.Span(TestHart.RamBase, (int)a.Memory.Size).ToArray();
        b.Memory.Write(TestHart.RamBase, ram);
        b.Hart.Restore(saved);
        Assert.Equal(saved, b.Hart.Save());

        Assert.Equal(StopReason.EnvironmentCall, a.Hart.Run(10_000_000));
        Assert.Equal(StopReason.EnvironmentCall, b.Hart.Run(10_000_000));
        Assert.Equal(a.Hart.Save(), b.Hart.Save());
        Assert.Equal(0UL, a.Hart.GetX(5));
        Assert.True(a.Memory.Span(TestHart.RamBase, (int)a.Memory.Size).SequenceEqual(b.Memory.Span(TestHart.RamBase, (int)b.Memory.Size)));
    }

    [Fact]
    public void Budget_is_exact_so_runs_split_anywhere_retire_the_same_instructions()
    {
        using var t = new TestHart();
        LoadMixedLoop(t);
        Assert.Equal(StopReason.BudgetSpent, t.Hart.Run(7));
        Assert.Equal(7UL, t.Hart.InstructionsRetired);
        Assert.Equal(StopReason.BudgetSpent, t.Hart.Run(1));
        Assert.Equal(8UL, t.Hart.InstructionsRetired);
        Assert.Equal(StopReason.BudgetSpent, t.Hart.Run(1000));
        Assert.Equal(1008UL, t.Hart.InstructionsRetired);
    }

    [Fact]
    public void Jump_into_unmapped_space_raises_instruction_access_fault()
    {
        using var t = new TestHart();
        t.Code(TestHart.RamBase,
            Enc.Jalr(0, 0, 0x10)); // jump to 0x10: nothing lives there
        t.Code(TestHart.RamBase + 0x100, Enc.Ecall);
        t.Hart.TryWriteCsr(Csr.Mtvec, TestHart.RamBase + 0x100);
        t.Hart.InterceptEcallFrom = 1 << 3;
        Assert.Equal(StopReason.EnvironmentCall, t.Hart.Run(100));
        Assert.True(t.Hart.TryReadCsr(Csr.Mcause, out ulong cause));
        Assert.Equal(Cause.InstructionAccessFault, cause);
        Assert.True(t.Hart.TryReadCsr(Csr.Mtval, out ulong tval));
        Assert.Equal(0x10UL, tval);
        Assert.True(t.Hart.TryReadCsr(Csr.Mepc, out ulong epc));
        Assert.Equal(0x10UL, epc);
    }

    [Fact]
    public void Unknown_encoding_raises_illegal_instruction_with_its_bits_in_mtval()
    {
        using var t = new TestHart();
        t.Code(TestHart.RamBase, 0xFFFFFFFF);
        t.Code(TestHart.RamBase + 0x100, Enc.Ecall);
        t.Hart.TryWriteCsr(Csr.Mtvec, TestHart.RamBase + 0x100);
        t.Hart.InterceptEcallFrom = 1 << 3;
        Assert.Equal(StopReason.EnvironmentCall, t.Hart.Run(100));
        Assert.True(t.Hart.TryReadCsr(Csr.Mcause, out ulong cause));
        Assert.Equal(Cause.IllegalInstruction, cause);
        Assert.True(t.Hart.TryReadCsr(Csr.Mtval, out ulong tval));
        Assert.Equal(0xFFFFFFFFUL, tval);
    }

    [Fact]
    public void Random_code_never_throws_on_the_host()
    {
        // Fill RAM with seeded random words; a trap handler at the top of RAM skips the faulting
        // instruction. Whatever the bytes decode to, the host must keep running.
        for (int seed = 0; seed < 20; seed++)
        {
            using var t = new TestHart(64 * 1024);
            var rng = new Random(seed);
            var junk = new byte[60 * 1024];
            rng.NextBytes(junk);
            t.Memory.Write(TestHart.RamBase, junk);
            ulong handler = TestHart.RamBase + (62 * 1024);
            t.Code(handler,
                Enc.Csrrs(10, Csr.Mepc, 0),
                Enc.Addi(10, 10, 2),
                Enc.Csrrw(0, Csr.Mepc, 10),
                Enc.Mret);
            t.Hart.TryWriteCsr(Csr.Mtvec, handler);
            var stop = t.Hart.Run(200_000);
            Assert.True(stop is StopReason.BudgetSpent or StopReason.WaitForInterrupt, $"seed {seed}: {stop}");
        }
    }

    [Fact]
    public void Wfi_without_pending_interrupt_stops_the_run_and_an_interrupt_wakes_it()
    {
        using var t = new TestHart();
        t.Code(TestHart.RamBase, Enc.Wfi, Enc.Addi(5, 0, 42), Enc.Ecall);
        t.Hart.InterceptEcallFrom = 1 << 3;
        t.Hart.TryWriteCsr(Csr.Mie, 1UL << Cause.MachineTimer); // enabled, but MIE=0: wake without trapping
        Assert.Equal(StopReason.WaitForInterrupt, t.Hart.Run(100));
        Assert.True(t.Hart.WaitingForInterrupt);
        Assert.Equal(StopReason.WaitForInterrupt, t.Hart.Run(100));
        t.Hart.SetInterruptLine(Cause.MachineTimer, true);
        Assert.False(t.Hart.WaitingForInterrupt);
        Assert.Equal(StopReason.EnvironmentCall, t.Hart.Run(100));
        Assert.Equal(42UL, t.Hart.GetX(5));
    }

    [Fact]
    public void Satp_write_of_an_unsupported_mode_leaves_satp_unchanged()
    {
        using var t = new TestHart();
        ulong sv39 = (8UL << 60) | 0x80123;
        Assert.True(t.Hart.TryWriteCsr(Csr.Satp, sv39));
        Assert.True(t.Hart.TryWriteCsr(Csr.Satp, (9UL << 60) | 0x5)); // Sv48, as Linux probes it
        Assert.True(t.Hart.TryReadCsr(Csr.Satp, out ulong satp));
        Assert.Equal(sv39, satp);
    }

    [Fact]
    public void Stores_into_predecoded_code_take_effect_after_fence_i()
    {
        using var t = new TestHart();
        // x6 = address of the patched instruction; first pass runs "addi x5,x0,1", then it is
        // overwritten with "addi x5,x0,2" and run again.
        ulong target = TestHart.RamBase + 0x40;
        t.Code(TestHart.RamBase,
            Enc.Lui(6, 0x80000), 0x02031313, 0x02035313, // x6 = 0x80000000 zero-extended
            Enc.Addi(6, 6, 0x40),
            Enc.Jal(1, 0x30),                // call target (0x10 + 0x30 = 0x40)
            Enc.Addi(7, 5, 0),               // x7 = first result
            Enc.Lui(8, 0), Enc.Addi(8, 0, 0x293), // x8 = low bits of "addi x5,x0,2" = 0x00200293
            Enc.Lui(9, 0x200), Enc.Add(8, 8, 9),
            0x00832023,                      // sw x8, 0(x6)
            0x0000100F,                      // fence.i
            Enc.Jal(1, 0x10),                // call target again (0x30 + 0x10 = 0x40)
            Enc.Ecall);
        t.Code(target, Enc.Addi(5, 0, 1), Enc.Jalr(0, 1, 0));
        t.Hart.InterceptEcallFrom = 1 << 3;
        Assert.Equal(StopReason.EnvironmentCall, t.Hart.Run(1000));
        Assert.Equal(1UL, t.Hart.GetX(7));
        Assert.Equal(2UL, t.Hart.GetX(5));
    }

    [Fact]
    public void Sstc_drives_stip_from_stimecmp_once_machine_mode_enables_it()
    {
        using var t = new TestHart();
        ulong now = 1000;
        t.Hart.ReadTime = () => now;
        const ulong Stip = 1UL << Cause.SupervisorTimer;
        ulong Mip() => t.Hart.TryReadCsr(Csr.Mip, out ulong v) ? v : throw new InvalidOperationException();

        // Before STCE, STIP is the software-writable bit of old.
        Assert.True(t.Hart.TryWriteCsr(Csr.Mip, Stip));
        Assert.Equal(Stip, Mip() & Stip);
        Assert.True(t.Hart.TryWriteCsr(Csr.Mip, 0));
        Assert.Null(t.Hart.SupervisorTimerDeadline);

        Assert.True(t.Hart.TryWriteCsr(Csr.Menvcfg, 1UL << 63));
        Assert.True(t.Hart.TryWriteCsr(Csr.Stimecmp, 1500));
        Assert.Equal(1500UL, t.Hart.SupervisorTimerDeadline);
        Assert.Equal(0UL, Mip() & Stip);
        Assert.True(t.Hart.TryWriteCsr(Csr.Mip, Stip)); // no longer software-writable
        Assert.Equal(0UL, Mip() & Stip);
        now = 1500;
        t.Hart.UpdateTimer();
        Assert.Equal(Stip, Mip() & Stip);
        Assert.True(t.Hart.TryWriteCsr(Csr.Stimecmp, ulong.MaxValue)); // rearming lowers it
        Assert.Equal(0UL, Mip() & Stip);
    }

    [Fact]
    public void Cpu_stores_mark_pages_dirty_again_after_every_harvest()
    {
        // The store loop of LoadMixedLoop writes one page (0x80080000) over and over; the fast
        // path must not hide stores made after a harvest.
        using var t = new TestHart();
        LoadMixedLoop(t);
        int page = 0x80;
        var bitmap = new ulong[t.Memory.DirtyWords];
        t.Memory.HarvestDirty(bitmap); // drop the loader's marks
        for (int round = 0; round < 3; round++)
        {
            Assert.Equal(StopReason.BudgetSpent, t.Hart.Run(1000));
            t.Memory.HarvestDirty(bitmap);
            Assert.True((bitmap[page / 64] & (1UL << (page % 64))) != 0, $"round {round}: the stored-to page is not dirty");
            Assert.True((bitmap[0] & 1) == 0, "the code page was never written");
        }
    }
}
