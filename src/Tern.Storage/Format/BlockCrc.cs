// CRC32C of one 4 KiB data block, the hot path of every verified read. Two fast paths, both
// checked against System.IO.Hashing (which computes every other length, and serves CPUs that
// have neither):
//
// - Carry-less multiplication on 512-bit vectors (VPCLMULQDQ with AVX-512): the block is read
//   as 16 rows of 256 bytes; four vector accumulators hold the 16 128-bit lanes of a row, and
//   each next row is added after the accumulators are "folded" forward by 2048 bits (multiplied
//   by x^2048 modulo the CRC polynomial, as two 64x64-bit carry-less products per lane). The 16
//   lanes are then folded onto the last one and its 128 bits reduced with two crc32
//   instructions. Reading a 64-bit lane as a polynomial whose bit k is the coefficient of
//   x^(63-k) (the reflected order the CRC consumes bits in), a lane h times a constant stored
//   the same way yields h*k*x in 128 bits, so folding by F bits uses x^(F+63) and x^(F-1)
//   mod P for the high and low halves. The preset 0xFFFFFFFF is added at the end as the
//   register it leaves after 4096 zero bytes. Every constant is computed at start-up.
// - The crc32 instruction in three streams: it takes 3 cycles but can start every cycle, so
//   the block is cut into three streams of 1360 bytes run side by side, joined with "shift by
//   N zero bytes" operators (the register update is linear over GF(2): running it over D from
//   state s gives Shift_len(D)(s) xor the same run from state 0), then the last 16 bytes.
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Tern.Storage.Format;

/// <summary>CRC32C of a 4 KiB block, three streams wide where the CPU has the crc32 instruction.</summary>
internal static class BlockCrc
{
    private const int Block = 4096;
    private const int Words = 170; // 8-byte words per stream
    private const int Stream = Words * 8; // 1360 bytes

    // Shift operators over one stream (1360 zero bytes) and two (2720), as 4 x 256 tables each.
    private static readonly uint[]? ShiftOne = Sse42.X64.IsSupported ? Tables(Stream) : null;
    private static readonly uint[]? ShiftTwo = Sse42.X64.IsSupported ? Tables(2 * Stream) : null;

    private const ulong Poly = 0x1_1EDC_6F41; // x^32 + ..., CRC32C (Castagnoli), normal order

    private static readonly bool Wide = Pclmulqdq.V512.IsSupported && Avx512F.IsSupported && Pclmulqdq.IsSupported && Sse42.X64.IsSupported;

    // (x^2111 mod P, x^2047 mod P) in every 128-bit lane: folds an accumulator forward by one row.
    private static readonly Vector512<ulong> RowFold = Wide ? Vector512.Create(FoldBy(2048)) : default;

    // Fold a whole 512-bit accumulator forward by 3, 2 and 1 vectors, onto the last one.
    private static readonly Vector512<ulong> Fold1536 = Wide ? Vector512.Create(FoldBy(1536)) : default;
    private static readonly Vector512<ulong> Fold1024 = Wide ? Vector512.Create(FoldBy(1024)) : default;
    private static readonly Vector512<ulong> Fold512 = Wide ? Vector512.Create(FoldBy(512)) : default;

    // Folds lanes 0, 1, 2 of the last vector onto lane 3 (by 384, 256, 128 bits); lane 3's own
    // constants are zero, so its product vanishes and the lane itself is added apart.
    private static readonly Vector512<ulong> LastLanes = Wide ? Vector512.Create(Vector256.Create(FoldBy(384), FoldBy(256)), Vector256.Create(FoldBy(128), Vector128<ulong>.Zero)) : default;

    // The register 4096 zero bytes leave from the preset 0xFFFFFFFF.
    private static readonly uint Preset = Sse42.X64.IsSupported ? AfterZeros(0xFFFF_FFFF, Block) : 0;

    /// <summary>Which path computes block CRCs on this CPU, for reports.</summary>
    public static string Path => Wide ? "vpclmulqdq" : Sse42.X64.IsSupported ? "crc32x3" : "System.IO.Hashing";

    /// <summary>CRC32C (Castagnoli, the same value as System.IO.Hashing's Crc32C) of <paramref name="data"/>.</summary>
    public static uint Compute(ReadOnlySpan<byte> data)
    {
        if (data.Length != Block || !Sse42.X64.IsSupported)
            return Portable(data);
        return Wide ? Folded(data) : ThreeStreams(data);
    }

    /// <summary>The same value by System.IO.Hashing, whatever the length and CPU.</summary>
    public static uint Portable(ReadOnlySpan<byte> data) =>
        System.IO.Hashing.Crc32.HashToUInt32(System.IO.Hashing.Crc32ParameterSet.Crc32C, data);

    /// <summary>The three-stream crc32 path (SSE4.2 only), for tests and comparisons.</summary>
    internal static uint ThreeStreams(ReadOnlySpan<byte> data)
    {
        ref byte p = ref MemoryMarshal.GetReference(data);
        ulong a = 0xFFFF_FFFF, b = 0, c = 0;
        for (int i = 0; i < Stream; i += 8)
        {
            a = Sse42.X64.Crc32(a, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, i)));
            b = Sse42.X64.Crc32(b, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, i + Stream)));
            c = Sse42.X64.Crc32(c, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, i + (2 * Stream))));
        }
        ulong s = Apply(ShiftTwo!, (uint)a) ^ Apply(ShiftOne!, (uint)b) ^ (uint)c;
        s = Sse42.X64.Crc32(s, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, 3 * Stream)));
        s = Sse42.X64.Crc32(s, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, (3 * Stream) + 8)));
        return ~(uint)s;
    }

    /// <summary>The carry-less multiplication path (VPCLMULQDQ and AVX-512 only), for tests and comparisons.</summary>
    internal static uint Folded(ReadOnlySpan<byte> data)
    {
        ref ulong p = ref Unsafe.As<byte, ulong>(ref MemoryMarshal.GetReference(data));
        var k = RowFold;
        var a0 = Vector512.LoadUnsafe(ref p, 0);
        var a1 = Vector512.LoadUnsafe(ref p, 8);
        var a2 = Vector512.LoadUnsafe(ref p, 16);
        var a3 = Vector512.LoadUnsafe(ref p, 24);
        for (nuint row = 32; row < Block / 8; row += 32)
        {
            a0 = Fold(a0, k) ^ Vector512.LoadUnsafe(ref p, row);
            a1 = Fold(a1, k) ^ Vector512.LoadUnsafe(ref p, row + 8);
            a2 = Fold(a2, k) ^ Vector512.LoadUnsafe(ref p, row + 16);
            a3 = Fold(a3, k) ^ Vector512.LoadUnsafe(ref p, row + 24);
        }
        // The four accumulators onto the last (lanes 0..11 forward by 1536, 1024, 512 bits),
        // then its lanes 12..14 onto lane 15 by 384, 256, 128 bits, all independent products.
        var b = a3 ^ Fold(a0, Fold1536) ^ Fold(a1, Fold1024) ^ Fold(a2, Fold512);
        var t = Fold(b, LastLanes);
        var half = t.GetLower() ^ t.GetUpper();
        var x = half.GetLower() ^ half.GetUpper() ^ b.GetUpper().GetUpper();
        ulong s = Sse42.X64.Crc32(Sse42.X64.Crc32(0UL, x.GetElement(0)), x.GetElement(1));
        return ~((uint)s ^ Preset);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<ulong> Fold(Vector512<ulong> a, Vector512<ulong> k) =>
        Pclmulqdq.V512.CarrylessMultiply(a, k, 0x00) ^ Pclmulqdq.V512.CarrylessMultiply(a, k, 0x11);

    // The constants that fold a 128-bit lane forward by f bits (see the top of the file).
    private static Vector128<ulong> FoldBy(int f) => Vector128.Create(Reflect(XPowMod(f + 63)), Reflect(XPowMod(f - 1)));

    private static ulong XPowMod(int n)
    {
        ulong r = 1;
        for (int i = 0; i < n; i++)
        {
            r <<= 1;
            if ((r & (1UL << 32)) != 0)
                r ^= Poly;
        }
        return r;
    }

    // A polynomial of degree < 64 into a lane whose bit k holds the coefficient of x^(63-k).
    private static ulong Reflect(ulong poly)
    {
        ulong lane = 0;
        for (int d = 0; d < 64; d++)
        {
            if ((poly & (1UL << d)) != 0)
                lane |= 1UL << (63 - d);
        }
        return lane;
    }

    private static uint AfterZeros(uint s, int zeros)
    {
        ulong r = s;
        for (int n = 0; n < zeros; n += 8)
            r = Sse42.X64.Crc32(r, 0UL);
        return (uint)r;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Apply(uint[] t, uint s) =>
        t[s & 0xFF] ^ t[256 + ((s >> 8) & 0xFF)] ^ t[512 + ((s >> 16) & 0xFF)] ^ t[768 + (s >> 24)];

    // The register after `zeros` zero bytes, for each single-bit start state, spread into tables
    // by linearity: entry v of table k is the XOR of the images of the bits set in v << 8k.
    private static uint[] Tables(int zeros)
    {
        Span<uint> bit = stackalloc uint[32];
        for (int i = 0; i < 32; i++)
            bit[i] = AfterZeros(1u << i, zeros);
        var t = new uint[4 * 256];
        for (int k = 0; k < 4; k++)
        {
            for (int v = 1; v < 256; v++)
            {
                int low = v & -v;
                t[(k * 256) + v] = t[(k * 256) + (v ^ low)] ^ bit[(8 * k) + BitOperations.TrailingZeroCount(low)];
            }
        }
        return t;
    }
}
