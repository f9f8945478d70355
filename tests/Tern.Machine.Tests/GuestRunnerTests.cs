// End-to-end behaviour of the minimal board through GuestRunner: HTIF exits, the SiFive
// finisher, UART output, and timer interrupts waking WFI in icount mode.
using Tern.Tests.Shared;

namespace Tern.Machine.Tests;

public class GuestRunnerTests
{
    private const ulong Ram = 0x8000_0000;
    private const int T0 = 5, T1 = 6, T2 = 7;

    private static GuestRunResult RunWords(bool htif, params uint[] words) =>
        GuestRunner.Run(new GuestRunOptions
        {
            Kernel = ElfBuilder.Build(Ram, ElfBuilder.Words(words), Ram,
                new Dictionary<string, ulong> { ["tohost"] = Ram + 0x1000, ["fromhost"] = Ram + 0x1008 }, extraMemory: 0x2000),
            Htif = htif,
            Clock = ClockMode.Icount,
            Timeout = TimeSpan.FromSeconds(30),
        });

    private static uint[] WriteTohost(int value) =>
    [
        Enc.Auipc(T0, 1),                 // t0 = tohost
        Enc.Addi(T1, 0, value),
        Enc.Sd(T0, T1, 0),
        Enc.Jal(0, 0),                    // spin: the host must stop us
    ];

    [Fact]
    public void Htif_write_of_1_is_a_pass()
    {
        var r = RunWords(true, WriteTohost(1));
        Assert.Equal(ExitReason.Htif, r.Reason);
        Assert.Equal(0, r.ExitCode);
    }

    [Fact]
    public void Htif_odd_value_reports_the_failing_test_number()
    {
        var r = RunWords(true, WriteTohost((5 << 1) | 1));
        Assert.Equal(ExitReason.Htif, r.Reason);
        Assert.Equal(5, r.ExitCode);
        Assert.Contains("test 5", r.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Finisher_failure_code_becomes_the_exit_code_and_uart_output_is_collected()
    {
        var r = RunWords(false,
            Enc.Lui(T0, 0x10000),             // UART
            Enc.Addi(T1, 0, 'O'), Enc.Sb(T0, T1, 0),
            Enc.Addi(T1, 0, 'K'), Enc.Sb(T0, T1, 0),
            Enc.Lui(T0, 0x100),               // finisher
            Enc.Lui(T1, 0x2A3), Enc.Addi(T1, T1, 0x333), // 0x3333 | 42 << 16
            Enc.Sw(T0, T1, 0),
            Enc.Jal(0, 0));
        Assert.Equal(ExitReason.PowerOff, r.Reason);
        Assert.Equal(42, r.ExitCode);
        Assert.Equal("OK", r.ConsoleOutput);
    }

    [Fact]
    public void Spinning_guest_stops_at_the_instruction_limit()
    {
        var r = GuestRunner.Run(new GuestRunOptions
        {
            Kernel = ElfBuilder.Build(Ram, ElfBuilder.Words(Enc.Jal(0, 0)), Ram),
            MaxInstructions = 10_000,
            Clock = ClockMode.Icount,
        });
        Assert.Equal(ExitReason.InstructionLimit, r.Reason);
        Assert.Equal(10_000UL, r.InstructionsRetired);
    }

    [Fact]
    public void Timer_interrupt_wakes_wfi_in_icount_mode_at_the_programmed_time()
    {
        // mtimecmp = mtime + 5000 ticks; enable MTIE and MIE; wfi; the handler reads mtime into
        // t2 and powers off. In icount mode the sleep jumps time forward to the deadline.
        const int Mtvec = 0x305, Mie = 0x304, Mstatus = 0x300;
        uint[] code =
        [
            Enc.Auipc(T0, 0), Enc.Addi(T0, T0, 0x40), Enc.Csrrw(0, Mtvec, T0),   // handler at +0x40
            Enc.Lui(T0, 0x200C), Enc.Ld(T1, T0, -8),                                // t1 = mtime (0x200bff8)
            Enc.Lui(T2, 1), Enc.Addi(T2, T2, 5000 - 4096), Enc.Add(T1, T1, T2),     // t1 += 5000
            Enc.Lui(T0, 0x2004), Enc.Sd(T0, T1, 0),                                 // mtimecmp = t1
            Enc.Addi(T2, 0, 0x80), Enc.Csrrs(0, Mie, T2),                          // MTIE
            Enc.Csrrsi(0, Mstatus, 8),                                             // MIE
            Enc.Wfi,
            Enc.Jal(0, 0),
            0x00000013,                                                            // (pad to +0x40)
            // +0x40: handler
            Enc.Lui(T0, 0x200C), Enc.Ld(T2, T0, -8),                                // t2 = mtime now
            Enc.Sub(T2, T2, T1),                                                   // t2 = now - deadline
            Enc.Lui(T0, 0x10000), Enc.Addi(T2, T2, '0'), Enc.Sb(T0, T2, 0),        // print '0' + lateness
            Enc.Lui(T0, 0x100), Enc.Lui(T1, 5), Enc.Addi(T1, T1, 0x555), Enc.Sw(T0, T1, 0),
            Enc.Jal(0, 0),
        ];
        var r = RunWords(false, code);
        Assert.Equal(ExitReason.PowerOff, r.Reason);
        Assert.Equal(0, r.ExitCode);
        Assert.Equal("0", r.ConsoleOutput); // woken exactly at the deadline: lateness 0 ticks
        Assert.True(r.InstructionsRetired < 100, $"the wait must not be spent executing instructions ({r.InstructionsRetired})");
    }

    [Fact]
    public void Finisher_reset_boots_the_guest_again_from_its_images()
    {
        // Prints "B" and asks for a reset (0x7777): every boot prints one more "B".
        var r = GuestRunner.Run(new GuestRunOptions
        {
            Kernel = ElfBuilder.Build(Ram, ElfBuilder.Words(
                Enc.Lui(T0, 0x10000), Enc.Addi(T1, 0, 'B'), Enc.Sb(T0, T1, 0),
                Enc.Lui(T0, 0x100), Enc.Lui(T1, 7), Enc.Addi(T1, T1, 0x777), Enc.Sw(T0, T1, 0),
                Enc.Jal(0, 0)), Ram),
            Clock = ClockMode.Icount,
            MaxInstructions = 35, // five boots of seven instructions
        });
        Assert.Equal(ExitReason.InstructionLimit, r.Reason);
        Assert.Equal("BBBBB", r.ConsoleOutput);
        Assert.Equal(35UL, r.InstructionsRetired);
    }
}
