// Seeded fuzzing of the virtio-mmio transport and its devices: random register writes (biased
// towards real registers and meaningful values), random ring layouts, random descriptor tables
// and available rings, guest scribbles and notifications. Bounded in count and in time. The host
// must never throw, the device must not write outside the part of RAM the fuzzer ever names
// (the upper half of RAM is a sentinel pattern that must survive), the interrupt line must match
// InterruptStatus, and afterwards the device must still identify itself and serve a request.
using System.Buffers.Binary;
using System.Diagnostics;
using Tern.Machine.Devices.Virtio;
using Tern.Riscv;
using Xunit.Abstractions;

namespace Tern.Machine.Tests.Virtio;

public sealed class VirtioFuzzTests(ITestOutputHelper output)
{
    private const ulong Base = VirtioDriver.RamBase;
    private const ulong RamSize = 16 << 20;
    private const ulong ArenaEnd = Base + (8 << 20);      // everything the fuzzer names lies below
    private const ulong SafeTop = ArenaEnd - (256 << 10); // ring/buffer addresses start below this
    private const int Operations = 20_000;
    private static readonly TimeSpan TimeLimit = TimeSpan.FromSeconds(20);

    private static readonly int[] Registers =
    [
        0x000, 0x004, 0x008, 0x00c, 0x010, 0x014, 0x020, 0x024, 0x028, 0x030, 0x034, 0x038, 0x03c, 0x040,
        0x044, 0x050, 0x060, 0x064, 0x070, 0x080, 0x084, 0x090, 0x094, 0x0a0, 0x0a4, 0x0ac, 0x0b0, 0x0c0, 0x0fc,
    ];

    private sealed class Fuzzer(Random rnd, GuestMemory mem, VirtioMmio dev)
    {
        private readonly List<(ulong Desc, ulong Avail, uint Num)> _rings = [];

        public int Faults { get; private set; }

        private ulong ArenaAddress(ulong align) => (Base + (ulong)rnd.NextInt64(0, (long)(SafeTop - Base))) & ~(align - 1);

        private ulong OutsideAddress() => rnd.Next(5) switch
        {
            0 => 0,
            1 => Base - 16,
            2 => Base + RamSize,
            3 => ulong.MaxValue - (ulong)rnd.Next(64),
            _ => (ulong)rnd.NextInt64() | (1UL << 40),
        };

        private uint Length() => rnd.Next(10) switch
        {
            0 => 0,
            1 => uint.MaxValue,
            2 => 0x8000_0000,
            3 => 0x1000_0000, // all larger than RAM
            _ => (uint)rnd.Next(1, 64 << 10),
        };

        // A value for a register, biased towards what drivers write, never naming the sentinel.
        private uint Value(int offset)
        {
            uint v = rnd.Next(8) switch
            {
                0 => (uint)rnd.Next(0, 300),
                1 => 1u << rnd.Next(32),
                2 => (uint)rnd.Next(0, 256) & 0xcf,
                3 => (uint)ArenaAddress(16),
                4 => (uint)ArenaAddress(1),
                5 => 0,
                6 => (uint)rnd.Next(0, 3),
                _ => (uint)rnd.NextInt64(0, 1L << 32),
            };
            if (offset == 0x028)
                return rnd.Next(4) switch { 0 => 4096, 1 => 0, 2 => 3, _ => 8192 };
            if (offset == 0x040 && (rnd.Next(3) != 0 || NamesSentinel(v * 4096UL) || NamesSentinel(v * 8192UL)))
                return (uint)(ArenaAddress(4096) / 4096);
            if (offset is 0x080 or 0x090 or 0x0a0 && NamesSentinel(v))
                return (uint)ArenaAddress(16);
            return v;
        }

        private static bool NamesSentinel(ulong address) => address >= SafeTop && address < Base + RamSize;

        public void Step()
        {
            switch (rnd.Next(100))
            {
                case < 45:
                    {
                        int off = rnd.Next(10) == 0 ? rnd.Next(0, 0x200) & ~3 : Registers[rnd.Next(Registers.Length)];
                        dev.Write((ulong)off, 4, Value(off));
                        break;
                    }
                case < 50:
                    {
                        int off = rnd.Next(0, 0x1000), size = rnd.Next(1, 9);
                        ulong v = off < 0x100 ? Value(off) : (ulong)rnd.NextInt64();
                        if (!dev.Write((ulong)off, size, v))
                            Faults++;
                        break;
                    }
                case < 58:
                    if (!dev.Read((ulong)rnd.Next(0, 0x1000), 1 << rnd.Next(4), out _))
                        Faults++;
                    break;
                case < 63:
                    Initialize();
                    break;
                case < 90:
                    RandomRequests();
                    break;
                case < 95:
                    {
                        var junk = new byte[rnd.Next(1, 256)];
                        rnd.NextBytes(junk);
                        mem.Write(ArenaAddress(1), junk);
                        break;
                    }
                default:
                    dev.Poll();
                    break;
            }
        }

        // A (mostly) well-formed bring-up with random sizes and places, so queues are often live.
        private void Initialize()
        {
            dev.Write(0x70, 4, 0);
            dev.Write(0x70, 4, 3);
            dev.Write(0x14, 4, 0);
            dev.Read(0x10, 4, out ulong lo);
            dev.Write(0x14, 4, 1);
            dev.Read(0x10, 4, out ulong hi);
            ulong features = (lo | (hi << 32)) & (ulong)rnd.NextInt64();
            if (dev.Version == 2)
                features |= 1UL << VirtioMmio.FeatureVersion1;
            dev.Write(0x24, 4, 0);
            dev.Write(0x20, 4, (uint)features);
            dev.Write(0x24, 4, 1);
            dev.Write(0x20, 4, (uint)(features >> 32));
            dev.Write(0x70, 4, 0xb);
            dev.Write(0x28, 4, 4096);
            _rings.Clear();
            int queues = dev.QueueCount;
            for (int q = 0; q < queues; q++)
            {
                uint num = rnd.Next(6) == 0 ? (uint)rnd.Next(0, 300) : 1u << rnd.Next(0, 8);
                dev.Write(0x30, 4, (uint)q);
                dev.Write(0x38, 4, num);
                if (dev.Version == 2)
                {
                    ulong desc = ArenaAddress(16), avail = ArenaAddress(2), used = ArenaAddress(4);
                    dev.Write(0x80, 4, (uint)desc);
                    dev.Write(0x84, 4, 0);
                    dev.Write(0x90, 4, (uint)avail);
                    dev.Write(0x94, 4, 0);
                    dev.Write(0xa0, 4, (uint)used);
                    dev.Write(0xa4, 4, 0);
                    dev.Write(0x44, 4, 1);
                    _rings.Add((desc, avail, num));
                }
                else
                {
                    ulong at = ArenaAddress(4096);
                    dev.Write(0x3c, 4, 4096);
                    dev.Write(0x40, 4, (uint)(at / 4096));
                    _rings.Add((at, at + (16 * (ulong)num), num));
                }
            }
            dev.Write(0x70, 4, 0xf);
        }

        // Random descriptor tables (direct, indirect, looping, out of RAM) and available entries.
        private void RandomRequests()
        {
            if (_rings.Count == 0)
                return;
            int q = rnd.Next(_rings.Count);
            var (desc, avail, num) = _rings[q];
            if (num is 0 or > 256 || !mem.Contains(desc, 16 * num) || !mem.Contains(avail, 6 + (2 * num)))
                return;
            if (rnd.Next(3) == 0)
            {
                WritePlausibleChain(desc, num);
            }
            else
            {
                int count = rnd.Next(1, 6);
                for (int i = 0; i < count; i++)
                    WriteDescriptor(desc, rnd.Next((int)num), num);
            }
            ushort idx = BinaryPrimitives.ReadUInt16LittleEndian(mem.Span(avail + 2, 2));
            int add = rnd.Next(10) == 0 ? rnd.Next(0, 65536) : rnd.Next(1, 4);
            for (int i = 0; i < Math.Min(add, 4); i++)
            {
                ushort head = _plausibleHead ?? (rnd.Next(8) == 0 ? (ushort)rnd.Next(65536) : (ushort)rnd.Next((int)num));
                _plausibleHead = null;
                mem.Write(avail + 4 + (2 * (ulong)((idx + i) % num)), BitConverter.GetBytes(head));
            }
            mem.Write(avail + 2, BitConverter.GetBytes((ushort)(idx + add)));
            if (rnd.Next(4) == 0)
                mem.Write(avail, BitConverter.GetBytes((ushort)rnd.Next(2)));
            dev.Write(0x50, 4, rnd.Next(10) == 0 ? (uint)rnd.Next() : (uint)q);
        }

        // A chain shaped like a real request (a readable header, then writable buffers), with random
        // contents, so devices get past validation and serve requests too.
        private void WritePlausibleChain(ulong table, uint num)
        {
            int head = rnd.Next((int)num);
            int length = Math.Min(rnd.Next(1, 4), (int)num);
            for (int i = 0; i < length; i++)
            {
                int at = (head + i) % (int)num;
                bool last = i == length - 1;
                var d = new byte[16];
                BinaryPrimitives.WriteUInt64LittleEndian(d, ArenaAddress(1));
                BinaryPrimitives.WriteUInt32LittleEndian(d.AsSpan(8), i == 0 ? (uint)rnd.Next(16, 64) : (uint)rnd.Next(1, 4096));
                ushort flags = (ushort)((i > 0 || length == 1 ? Virtqueue.DescWrite : 0) | (last ? 0 : Virtqueue.DescNext));
                BinaryPrimitives.WriteUInt16LittleEndian(d.AsSpan(12), flags);
                BinaryPrimitives.WriteUInt16LittleEndian(d.AsSpan(14), (ushort)((at + 1) % (int)num));
                mem.Write(table + (16 * (ulong)at), d);
            }
            _plausibleHead = (ushort)head;
        }

        private ushort? _plausibleHead;

        private void WriteDescriptor(ulong table, int index, uint tableSize, bool inTable = false)
        {
            ulong addr;
            uint len;
            ushort flags = (ushort)rnd.Next(8);
            if ((flags & Virtqueue.DescIndirect) != 0 && !inTable && rnd.Next(2) == 0)
            {
                int entries = rnd.Next(1, 8);
                addr = ArenaAddress(16);
                len = rnd.Next(8) == 0 ? Length() : (uint)(16 * entries);
                for (int e = 0; e < entries; e++)
                    WriteDescriptor(addr, e, (uint)entries, inTable: true);
            }
            else if (rnd.Next(6) == 0)
            {
                addr = OutsideAddress();
                len = Length();
            }
            else
            {
                addr = ArenaAddress(1);
                len = Length();
            }
            var d = new byte[16];
            BinaryPrimitives.WriteUInt64LittleEndian(d, addr);
            BinaryPrimitives.WriteUInt32LittleEndian(d.AsSpan(8), len);
            BinaryPrimitives.WriteUInt16LittleEndian(d.AsSpan(12), flags);
            BinaryPrimitives.WriteUInt16LittleEndian(d.AsSpan(14), rnd.Next(4) == 0 ? (ushort)rnd.Next(65536) : (ushort)rnd.Next((int)tableSize));
            mem.Write(table + (16 * (ulong)index), d);
        }
    }

    [Theory]
    [InlineData("blk", 2, 1)]
    [InlineData("blk", 2, 11)]
    [InlineData("blk", 1, 2)]
    [InlineData("blk", 1, 12)]
    [InlineData("rng", 2, 3)]
    [InlineData("rng", 1, 13)]
    [InlineData("net", 2, 4)]
    [InlineData("net", 2, 14)]
    [InlineData("net", 1, 5)]
    [InlineData("empty", 2, 6)]
    [InlineData("empty", 1, 16)]
    public void Random_guests_never_crash_the_host_or_write_outside_what_they_named(string kind, int version, int seed)
    {
        using var mem = new GuestMemory(Base, RamSize);
        var sentinel = new byte[RamSize - (ArenaEnd - Base)];
        new Random(seed * 7919).NextBytes(sentinel);
        mem.Write(ArenaEnd, sentinel);

        var pair = new LoopbackPair();
        var disk = new MemoryBlockBackend(256);
        IVirtioDevice? device = kind switch
        {
            "blk" => new VirtioBlk(disk),
            "rng" => new VirtioRng(),
            "net" => new VirtioNet(pair.A, VirtioNet.DefaultMac(0)),
            _ => null,
        };
        bool line = false;
        var dev = new VirtioMmio(mem, device, level => line = level, version);
        var rnd = new Random(seed);
        var fuzz = new Fuzzer(rnd, mem, dev);
        var clock = Stopwatch.StartNew();
        int done = 0;
        for (; done < Operations && clock.Elapsed < TimeLimit; done++)
        {
            if (kind == "net" && rnd.Next(20) == 0)
                pair.B.Send(new byte[rnd.Next(0, 2000)]);
            fuzz.Step();
            Assert.Equal(dev.InterruptStatus != 0, line);
        }
        Assert.True(done > 1000, $"only {done} operations in the time limit");

        Assert.True(mem.Span(ArenaEnd, sentinel.Length).SequenceEqual(sentinel), "the device wrote outside the memory the guest named");
        Assert.True(dev.Read(0, 4, out ulong magic));
        Assert.Equal(VirtioMmio.MagicValue, magic);
        Assert.True(fuzz.Faults > 0); // bad sizes and offsets were exercised
        // Both paths were exercised: protocol violations, and requests that got served.
        long served = device switch
        {
            VirtioBlk b => b.Reads + b.Writes + b.Flushes + b.Failures,
            VirtioRng r => r.BytesProvided,
            VirtioNet n => n.FramesSent + n.FramesReceived,
            _ => 1,
        };
        output.WriteLine($"{done} operations in {clock.ElapsedMilliseconds} ms: {dev.ErrorCount} device errors, {fuzz.Faults} access faults, {served} served");
        Assert.True(device is null || dev.ErrorCount > 100, $"only {dev.ErrorCount} device errors");
        Assert.True(served > 0, "no request was ever served");

        // A well-behaved driver can still bring the device up and use it.
        if (device is null)
            return;
        dev.Write(0x70, 4, 0);
        Assert.Equal(0u, dev.Status);
        var drv = new VirtioDriver(mem, dev);
        drv.Start(dev.QueueCount);
        if (device is VirtioBlk)
            Assert.Equal(VirtioBlk.StatusOk, VirtioBlkTests.Do(drv, VirtioBlk.TypeIn, 1, new byte[512], true).Status);
        else
            drv.Queues[kind == "net" ? 1 : 0].Submit(new Buffer(drv.Alloc(64), 64, kind == "rng"));
        Assert.False(drv.NeedsReset);
    }
}
