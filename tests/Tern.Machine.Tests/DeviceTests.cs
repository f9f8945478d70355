// Register-level behaviour of the PLIC, the UART and the RTC, as drivers rely on it.
using Tern.Machine.Devices.GoldfishRtc;
using Tern.Machine.Devices.Plic;
using Tern.Machine.Devices.Uart16550;
using Tern.Riscv;

namespace Tern.Machine.Tests;

public sealed class DeviceTests : IDisposable
{
    private readonly GuestMemory _memory = new(0x8000_0000, 1 << 20);
    private readonly Hart _hart0;
    private readonly Hart _hart1;

    public DeviceTests()
    {
        _hart0 = new Hart(0, _memory, EmptyBus.Instance);
        _hart1 = new Hart(1, _memory, EmptyBus.Instance);
        foreach (var h in new[] { _hart0, _hart1 })
            h.TryWriteCsr(Csr.Mie, (1UL << Cause.MachineExternal) | (1UL << Cause.SupervisorExternal));
    }

    public void Dispose()
    {
        _hart0.Dispose();
        _hart1.Dispose();
        _memory.Dispose();
    }

    private static ulong Mip(Hart h) => h.TryReadCsr(Csr.Mip, out ulong v) ? v : throw new InvalidOperationException();

    private static ulong Read(IMmioDevice d, ulong offset)
    {
        Assert.True(d.Read(offset, 4, out ulong v));
        return v;
    }

    private static void Write(IMmioDevice d, ulong offset, ulong value) => Assert.True(d.Write(offset, 4, value));

    [Fact]
    public void Plic_routes_by_priority_threshold_and_context_and_holds_a_claimed_source()
    {
        var plic = new Plic([_hart0, _hart1]);
        Write(plic, 4 * 10, 3);                  // source 10 priority 3
        Write(plic, 4 * 5, 5);                   // source 5 priority 5
        Write(plic, 0x2000 + (0x80 * 1), (1u << 10) | (1u << 5)); // hart 0 S context enables both
        plic.SetLevel(10, true);
        Assert.NotEqual(0UL, Mip(_hart0) & (1UL << Cause.SupervisorExternal));
        Assert.Equal(0UL, Mip(_hart0) & (1UL << Cause.MachineExternal));
        Assert.Equal(0UL, Mip(_hart1) & (1UL << Cause.SupervisorExternal));

        plic.SetLevel(5, true);
        Write(plic, 0x20_0000 + 0x1000, 4);      // threshold 4 on hart 0 S: only source 5 qualifies
        Assert.Equal(5UL, Read(plic, 0x20_0000 + 0x1000 + 4));
        Assert.Equal(0UL, Read(plic, 0x20_0000 + 0x1000 + 4)); // 10 is below the threshold
        Assert.Equal(0UL, Mip(_hart0) & (1UL << Cause.SupervisorExternal));
        Write(plic, 0x20_0000 + 0x1000 + 4, 5);  // complete 5: line still high, pending again
        Assert.Equal(1UL << 5, Read(plic, 0x1000) & (1UL << 5));
        plic.SetLevel(5, false);
        Assert.Equal(0UL, Read(plic, 0x1000) & (1UL << 5));
        Write(plic, 0x20_0000 + 0x1000, 0);
        Assert.Equal(10UL, Read(plic, 0x20_0000 + 0x1000 + 4));
    }

    [Fact]
    public void Clint_next_deadline_ignores_deadlines_already_passed()
    {
        // A hart that masked its timer after the deadline passed must not hold time back for
        // the others (it once froze icount time in a 4-hart Linux boot).
        ulong now = 1000;
        var clock = new GuestClock(ClockMode.Icount, () => now * GuestClock.InstructionsPerTick);
        var clint = new Devices.Clint.Clint([_hart0, _hart1], clock);
        Assert.Equal(ulong.MaxValue, clint.NextDeadline);
        Assert.True(clint.Write(0x4000, 8, 500));       // hart 0: already passed
        Assert.True(clint.Write(0x4008, 8, 5000));      // hart 1: in the future
        Assert.Equal(5000UL, clint.NextDeadline);
        Assert.NotEqual(0UL, Mip(_hart0) & (1UL << Cause.MachineTimer));
        Assert.Equal(0UL, Mip(_hart1) & (1UL << Cause.MachineTimer));
    }

    [Fact]
    public void Plic_state_round_trips()
    {
        var a = new Plic([_hart0, _hart1]);
        Write(a, 4 * 7, 2);
        Write(a, 0x2000, 1u << 7);
        a.SetLevel(7, true);
        var b = new Plic([_hart0, _hart1]);
        b.Restore(a.Save());
        Assert.Equal(a.Save().Pending, b.Save().Pending);
        Assert.Equal(7UL, Read(b, 0x20_0000 + 4));
    }

    [Fact]
    public void Uart_transmits_raises_thre_and_rx_interrupts_and_loops_back()
    {
        var output = new MemoryStream();
        bool irq = false;
        var uart = new Uart16550(output, level => irq = level);
        Assert.True(uart.Write(0, 1, 'h'));
        Assert.Equal("h"u8.ToArray(), output.ToArray());
        Assert.False(irq);

        Assert.True(uart.Write(1, 1, 0x02));     // enable THRE interrupt: transmitter is empty, so at once
        Assert.True(irq);
        Assert.True(uart.Read(2, 1, out ulong iir));
        Assert.Equal(0x02UL, iir & 0x0F);
        Assert.False(irq);                       // reading IIR acknowledged it

        Assert.True(uart.Write(1, 1, 0x01));     // RX interrupt only
        uart.Enqueue("ok"u8);
        uart.Poll();
        Assert.True(irq);
        Assert.True(uart.Read(5, 1, out ulong lsr));
        Assert.Equal(1UL, lsr & 1);
        Assert.True(uart.Read(0, 1, out ulong c1));
        Assert.True(uart.Read(0, 1, out ulong c2));
        Assert.Equal(('o', 'k'), ((char)c1, (char)c2));
        Assert.False(irq);

        Assert.True(uart.Write(4, 1, 0x10));     // loopback
        Assert.True(uart.Write(0, 1, 'z'));
        Assert.True(uart.Read(0, 1, out ulong back));
        Assert.Equal('z', (char)back);
        Assert.Equal("h"u8.ToArray(), output.ToArray());

        Assert.True(uart.Write(7, 1, 0x5A));     // scratch register
        Assert.True(uart.Read(7, 1, out ulong scr));
        Assert.Equal(0x5AUL, scr);
    }

    [Fact]
    public void Uart_state_round_trips_with_unread_input()
    {
        var a = new Uart16550(Stream.Null, _ => { });
        a.Write(3, 1, 0x03);
        a.Enqueue("abc"u8);
        a.Poll();
        var b = new Uart16550(Stream.Null, _ => { });
        b.Restore(a.Save());
        Assert.Equal(a.Save().Received, b.Save().Received);
        Assert.True(b.Read(0, 1, out ulong c));
        Assert.Equal('a', (char)c);
    }

    [Fact]
    public void Rtc_latches_the_high_word_and_fires_its_alarm()
    {
        long now = 0x1_2345_6789;
        bool irq = false;
        var rtc = new GoldfishRtc(() => now, level => irq = level);
        ulong low = Read(rtc, 0x00);
        now += 0x1_0000_0000; // the high word changes after the low read
        ulong high = Read(rtc, 0x04);
        Assert.Equal(0x1_2345_6789UL, (high << 32) | low);

        Write(rtc, 0x10, 1);                     // interrupts on
        Write(rtc, 0x0C, (ulong)((now + 1000) >> 32));
        Write(rtc, 0x08, (uint)(now + 1000));
        rtc.Poll();
        Assert.False(irq);
        now += 1000;
        rtc.Poll();
        Assert.True(irq);
        Write(rtc, 0x1C, 1);
        Assert.False(irq);
    }
}
