// The ELF loader refuses malformed and hostile files with a message that names the problem.
using Tern.Machine.Boot;
using Tern.Tests.Shared;

namespace Tern.Machine.Tests;

public class ElfImageTests
{
    private static byte[] Valid() => ElfBuilder.Build(0x8000_0000, ElfBuilder.Words(0x00000013), 0x8000_0000,
        new Dictionary<string, ulong> { ["tohost"] = 0x8000_1000, ["fromhost"] = 0x8000_1008 });

    [Fact]
    public void Valid_file_yields_entry_segments_and_symbols()
    {
        var elf = ElfImage.Parse(Valid());
        Assert.Equal(0x8000_0000UL, elf.Entry);
        Assert.Single(elf.Segments);
        Assert.True(elf.TryGetSymbol("tohost", out ulong tohost));
        Assert.Equal(0x8000_1000UL, tohost);
        Assert.False(elf.TryGetSymbol("missing", out _));
    }

    [Theory]
    [InlineData("magic", "bad magic")]
    [InlineData("class", "64-bit")]
    [InlineData("endian", "little-endian")]
    [InlineData("machine", "not RISC-V")]
    [InlineData("phoff", "program header table")]
    [InlineData("segment", "segment 0")]
    [InlineData("filesz", "exceeds memory size")]
    [InlineData("truncated", "truncated")]
    [InlineData("strtab-link", "missing section")]
    public void Malformed_file_is_refused_with_the_reason(string damage, string expected)
    {
        var f = Valid();
        switch (damage)
        {
            case "magic": f[1] = (byte)'X'; break;
            case "class": f[4] = 1; break;
            case "endian": f[5] = 2; break;
            case "machine": f[18] = 62; f[19] = 0; break;
            case "phoff": BitConverter.TryWriteBytes(f.AsSpan(32), 0x7FFF_FFFF_FFFF_0000UL); break;
            case "segment": BitConverter.TryWriteBytes(f.AsSpan(64 + 8), (ulong)f.Length - 2); break;
            case "filesz": BitConverter.TryWriteBytes(f.AsSpan(64 + 40), 1UL); break;
            case "truncated": f = f[..40]; break;
            case "strtab-link":
                int shoff = (int)BitConverter.ToUInt64(f, 40);
                BitConverter.TryWriteBytes(f.AsSpan(shoff + 64 + 40), 99u);
                break;
        }
        var e = Assert.Throws<InvalidImageException>(() => ElfImage.Parse(f));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Random_corruption_never_escapes_as_anything_but_a_clear_refusal()
    {
        var valid = Valid();
        var rng = new Random(1234);
        for (int i = 0; i < 5000; i++)
        {
            var f = (byte[])valid.Clone();
            int flips = rng.Next(1, 8);
            for (int k = 0; k < flips; k++)
                f[rng.Next(f.Length)] = (byte)rng.Next(256);
            try
            {
                ElfImage.Parse(f);
            }
            catch (InvalidImageException)
            {
                // refused with a reason: fine
            }
        }
    }

    [Fact]
    public void Segment_outside_guest_ram_is_refused_before_anything_runs()
    {
        var f = ElfBuilder.Build(0x1000, ElfBuilder.Words(0x00000013), 0x1000);
        using var m = new VirtMachine(new MachineOptions { MemoryBytes = 16 << 20, Console = Stream.Null });
        var e = Assert.Throws<InvalidImageException>(() => m.LoadKernel(f, htif: false));
        Assert.Contains("does not fit in guest RAM", e.Message, StringComparison.Ordinal);
    }
}
