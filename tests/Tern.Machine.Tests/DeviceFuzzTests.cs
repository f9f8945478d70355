// Hostile guests against the PLIC, UART, CLINT and RTC models: seeded random register
// traffic (bounded in count and time) never throws on the host, and each device still
// answers sensibly afterwards. Also the save/restore round trip of CLINT and RTC state.
using System.Diagnostics;
using Tern.Machine.Devices.Clint;
using Tern.Machine.Devices.GoldfishRtc;
using Tern.Machine.Devices.Plic;
using Tern.Machine.Devices.Uart16550;
using Tern.Riscv;

namespace Tern.Machine.Tests;

public sealed class DeviceFuzzTests : IDisposable
{
    private readonly GuestMemory _memory = new(0x8000_0000, 1 << 20);
    private readonly Hart[] _harts;

    public DeviceFuzzTests() => _harts = [new Hart(0, _memory, EmptyBus.Instance), new Hart(1, _memory, EmptyBus.Instance)];

    public void Dispose()
    {
        foreach (var h in _harts)
            h.Dispose();
        _memory.Dispose();
    }

    // Offsets biased toward the registers that exist, with some anywhere in the window.
    private static ulong Offset(Random rng, ulong window, ulong[] hot) =>
        rng.Next(4) == 0 ? (ulong)rng.NextInt64((long)window) : hot[rng.Next(hot.Length)] + (ulong)(rng.Next(8) * 4);

    private static void Hammer(IMmioDevice device, int seed, ulong window, ulong[] hot, Action<Random>? between = null)
    {
        var rng = new Random(seed);
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < 20_000 && clock.Elapsed < TimeSpan.FromSeconds(10); i++)
        {
            ulong offset = Offset(rng, window, hot);
            int size = new[] { 1, 2, 4, 8 }[rng.Next(4)];
            if (rng.Next(2) == 0)
                device.Write(offset, size, (ulong)rng.NextInt64());
            else
                device.Read(offset, size, out _);
            between?.Invoke(rng);
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Plic_survives_random_register_traffic_and_still_routes(int seed)
    {
        var plic = new Plic(_harts);
        Hammer(plic, seed, Plic.WindowSize, [0, 0x1000, 0x2000, 0x2080, 0x2100, 0x20_0000, 0x20_1000, 0x20_2000, 0x20_3000],
            rng => plic.SetLevel(1 + rng.Next(Plic.Sources - 1), rng.Next(2) == 0));
        // A clean configuration afterwards still works.
        for (int src = 1; src < Plic.Sources; src++)
            plic.SetLevel(src, false);
        Assert.True(plic.Write(0x20_1000, 4, 0));                // hart 0 S threshold
        Assert.True(plic.Write(4 * 33, 4, 6));                   // source 33 priority 6
        Assert.True(plic.Write(0x2080 + 4, 4, 1u << 1));         // hart 0 S enables source 33
        plic.SetLevel(33, true);
        for (int i = 0; i < 100; i++)                            // drain stale claims left by the fuzzing
        {
            Assert.True(plic.Read(0x20_1004, 4, out ulong c));
            if (c == 33)
                return;
            Assert.True(plic.Write(0x20_1004, 4, c));
        }
        Assert.Fail("source 33 was never claimable after the fuzzing");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Uart_survives_random_register_traffic_and_still_transmits(int seed)
    {
        var output = new MemoryStream();
        var uart = new Uart16550(output, _ => { });
        Hammer(uart, seed, Board.UartSize, [0, 0, 1, 2, 3, 4, 5], rng =>
        {
            if (rng.Next(50) == 0)
            {
                uart.Enqueue([(byte)rng.Next(256)]);
                uart.Poll();
            }
        });
        Assert.True(uart.Write(3, 1, 0x03));   // DLAB off, 8N1
        Assert.True(uart.Write(4, 1, 0x00));   // loopback off
        long before = output.Length;
        Assert.True(uart.Write(0, 1, 'Z'));
        Assert.Equal(before + 1, output.Length);
        Assert.True(uart.Read(5, 1, out ulong lsr));
        Assert.Equal(0x60UL, lsr & 0x60);      // transmitter empty and idle
    }

    [Fact]
    public void Clint_and_rtc_survive_random_traffic_and_round_trip_their_state()
    {
        ulong instructions = 0;
        var clock = new GuestClock(ClockMode.Icount, () => instructions);
        var clint = new Clint(_harts, clock);
        Hammer(clint, 7, Board.ClintSize, [0, 0x4000, 0x4008, 0xBFF8], rng => instructions += (ulong)rng.Next(1000));
        var copy = new Clint(_harts, clock);
        copy.Restore(clint.Save());
        Assert.Equal(clint.Save().Mtimecmp, copy.Save().Mtimecmp);
        Assert.Equal(clint.Save().Msip, copy.Save().Msip);

        long ns = 1_700_000_000_000_000_000;
        var rtc = new GoldfishRtc(() => ns, _ => { });
        Hammer(rtc, 8, Board.RtcSize, [0x00, 0x08, 0x10, 0x18], rng =>
        {
            ns += rng.Next(1_000_000);
            rtc.Poll();
        });
        var rtcCopy = new GoldfishRtc(() => ns, _ => { });
        rtcCopy.Restore(rtc.Save());
        Assert.Equal(rtc.Save(), rtcCopy.Save());
        Assert.True(rtcCopy.Read(0, 4, out ulong low));
        Assert.True(rtc.Read(0, 4, out ulong low2));
        Assert.Equal(low2, low);
    }
}
