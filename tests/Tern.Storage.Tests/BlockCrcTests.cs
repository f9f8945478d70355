// The block CRC's fast paths against System.IO.Hashing: the tag of every data block on disk
// must stay what Crc32C computes, whichever path this CPU takes.
using System.Runtime.Intrinsics.X86;
using Tern.Storage.Format;

namespace Tern.Storage.Tests;

public sealed class BlockCrcTests
{
    private static IEnumerable<byte[]> Blocks()
    {
        var rng = new Random(7);
        yield return new byte[4096];
        yield return Enumerable.Repeat((byte)0xFF, 4096).ToArray();
        for (int i = 0; i < 2000; i++)
        {
            var b = new byte[4096];
            if (i % 2 == 0)
                rng.NextBytes(b);
            else
                b[rng.Next(4096)] = (byte)(1 << rng.Next(8)); // sparse: one bit set anywhere
            yield return b;
        }
    }

    [Fact]
    public void Every_path_gives_the_Crc32C_of_a_block()
    {
        foreach (var b in Blocks())
        {
            uint want = BlockCrc.Portable(b);
            Assert.Equal(want, BlockCrc.Compute(b));
            if (Sse42.X64.IsSupported)
                Assert.Equal(want, BlockCrc.ThreeStreams(b));
            if (BlockCrc.Path == "vpclmulqdq")
                Assert.Equal(want, BlockCrc.Folded(b));
        }
        Assert.Equal(0x98F94189u, BlockCrc.Compute(new byte[4096])); // CRC32C of 4096 zero bytes, as Crc32C computes it
    }

    [Fact]
    public void A_flip_of_any_single_bit_changes_the_tag()
    {
        var b = new byte[4096];
        new Random(3).NextBytes(b);
        uint tag = Checksums.BlockTag(b);
        for (int bit = 0; bit < 4096 * 8; bit++)
        {
            b[bit / 8] ^= (byte)(1 << (bit % 8));
            Assert.NotEqual(tag, Checksums.BlockTag(b));
            b[bit / 8] ^= (byte)(1 << (bit % 8));
        }
        Assert.Equal(tag, Checksums.BlockTag(b));
    }

    [Fact]
    public void Other_lengths_are_computed_too()
    {
        var rng = new Random(5);
        foreach (int n in new[] { 0, 1, 7, 4095, 4097, 8192 })
        {
            var b = new byte[n];
            rng.NextBytes(b);
            Assert.Equal(BlockCrc.Portable(b), BlockCrc.Compute(b));
        }
    }
}
