// A hand-assembled bare-metal guest that dirties memory at a given rate, for migration tests.
// It fills a working set with pseudo-random words (so pages do not compress), then, paced by
// the time CSR, rewrites word 0 of one page after another with a running count, checking
// first that the page still holds the count it wrote there last (else it prints "FAIL" and
// stops). Every heartbeat interval it prints "H\n". The pacing never catches up after a
// stall, so a throttled guest really dirties fewer pages per second.
using System.Buffers.Binary;

namespace Tern.Tests.Shared;

internal static class DirtierGuest
{
    /// <summary>Where the working set starts: 1 MiB into RAM.</summary>
    public const ulong WorkingSetBase = 0x8010_0000;

    public static byte[] Elf(int pagesPerSecond, int workingSetPages, int heartbeatMs = 20)
    {
        const ulong ram = 0x8000_0000;
        const int t0 = 5, t1 = 6, t2 = 7, t3 = 28, t4 = 29, s0 = 8, s1 = 9, s2 = 18, s3 = 19, s4 = 20, s5 = 21, s6 = 22, s7 = 23, s11 = 27;
        const int paramOffset = 0x400;
        var a = new Asm();
        a.Emit(Enc.Auipc(s11, 0));
        a.Emit(Enc.Ld(s0, s11, paramOffset));
        a.Emit(Enc.Ld(s1, s11, paramOffset + 8));
        a.Emit(Enc.Ld(s2, s11, paramOffset + 16));
        a.Emit(Enc.Ld(s7, s11, paramOffset + 24));
        a.Emit(Enc.Ld(t3, s11, paramOffset + 32));
        a.Emit(Enc.Lui(t0, 0x10000));
        a.Emit(Slli(t2, s1, 12));
        a.Emit(Enc.Add(t2, t2, s0));               // t2 = end of the working set
        a.Emit(Enc.Addi(t1, s0, 0));
        a.Label("fill");                           // xorshift64 into every word
        a.Emit(Slli(t4, t3, 13)); a.Emit(Xor(t3, t3, t4));
        a.Emit(Srli(t4, t3, 7)); a.Emit(Xor(t3, t3, t4));
        a.Emit(Slli(t4, t3, 17)); a.Emit(Xor(t3, t3, t4));
        a.Emit(Enc.Sd(t1, t3, 0));
        a.Emit(Enc.Addi(t1, t1, 8));
        a.Branch(Bltu, t1, t2, "fill");
        a.Emit(Enc.Addi(t1, s0, 0));
        a.Emit(Enc.Lui(t4, 1));                    // t4 = 4096
        a.Label("zero");                           // word 0 of each page starts at 0
        a.Emit(Enc.Sd(t1, 0, 0));
        a.Emit(Enc.Add(t1, t1, t4));
        a.Branch(Bltu, t1, t2, "zero");
        a.Emit(Enc.Addi(s3, 0, 0));                // page index
        a.Emit(Enc.Addi(s4, 0, 0));                // writes done
        a.Emit(Enc.Csrrs(s5, 0xC01, 0));           // next write due
        a.Emit(Enc.Addi(s6, s5, 0));               // next heartbeat due
        a.Label("loop");
        a.Emit(Enc.Csrrs(t1, 0xC01, 0));
        a.Branch(Bltu, t1, s6, "nohb");
        a.Emit(Enc.Add(s6, s6, s7));
        a.Branch(Bgeu, s6, t1, "hbok");
        a.Emit(Enc.Add(s6, t1, s7));
        a.Label("hbok");
        a.Emit(Enc.Addi(t4, 0, 'H')); a.Emit(Enc.Sb(t0, t4, 0));
        a.Emit(Enc.Addi(t4, 0, '\n')); a.Emit(Enc.Sb(t0, t4, 0));
        a.Label("nohb");
        a.Branch(Bltu, t1, s5, "loop");
        a.Emit(Enc.Add(s5, s5, s2));
        a.Branch(Bgeu, s5, t1, "paced");
        a.Emit(Enc.Addi(s5, t1, 0));               // behind: do not catch up
        a.Label("paced");
        a.Emit(Slli(t2, s3, 12));
        a.Emit(Enc.Add(t2, t2, s0));
        a.Emit(Enc.Ld(t3, t2, 0));
        a.Emit(Enc.Addi(s4, s4, 1));
        a.Emit(Enc.Sub(t4, s4, s1));               // expected: the count written W writes ago
        a.Branch(Bltu, s1, s4, "keep");
        a.Emit(Enc.Addi(t4, 0, 0));                // ... or 0 on the first pass
        a.Label("keep");
        a.Branch(Bne, t3, t4, "fail");
        a.Emit(Enc.Sd(t2, s4, 0));
        a.Emit(Enc.Addi(s3, s3, 1));
        a.Branch(Bne, s3, s1, "loop");
        a.Emit(Enc.Addi(s3, 0, 0));
        a.Jump("loop");
        a.Label("fail");
        foreach (char c in "FAIL\n")
        {
            a.Emit(Enc.Addi(t4, 0, c));
            a.Emit(Enc.Sb(t0, t4, 0));
        }
        a.Label("halt");
        a.Jump("halt");

        var code = new byte[paramOffset + 40];
        var words = a.Assemble();
        if (words.Length > paramOffset)
            throw new InvalidOperationException("dirtier code overlaps its parameters");
        words.CopyTo(code, 0);
        long interval = pagesPerSecond <= 0 ? long.MaxValue / 4 : 10_000_000L / pagesPerSecond;
        BinaryPrimitives.WriteUInt64LittleEndian(code.AsSpan(paramOffset), WorkingSetBase);
        BinaryPrimitives.WriteUInt64LittleEndian(code.AsSpan(paramOffset + 8), (ulong)workingSetPages);
        BinaryPrimitives.WriteUInt64LittleEndian(code.AsSpan(paramOffset + 16), (ulong)interval);
        BinaryPrimitives.WriteUInt64LittleEndian(code.AsSpan(paramOffset + 24), (ulong)heartbeatMs * 10_000);
        BinaryPrimitives.WriteUInt64LittleEndian(code.AsSpan(paramOffset + 32), 0x9E37_79B9_7F4A_7C15UL);
        return ElfBuilder.Build(ram, code, ram);
    }

    private const int Bne = 1, Bltu = 6, Bgeu = 7;

    private static uint Slli(int rd, int rs1, int shamt) => Enc.I(0x13, rd, 1, rs1, shamt);

    private static uint Srli(int rd, int rs1, int shamt) => Enc.I(0x13, rd, 5, rs1, shamt);

    private static uint Xor(int rd, int rs1, int rs2) => ((uint)rs2 << 20) | ((uint)rs1 << 15) | (4u << 12) | ((uint)rd << 7) | 0x33;

    private static uint B(int f3, int rs1, int rs2, int offset) =>
        ((uint)((offset >> 12) & 1) << 31) | ((uint)((offset >> 5) & 0x3F) << 25) | ((uint)rs2 << 20) | ((uint)rs1 << 15) |
        ((uint)f3 << 12) | ((uint)((offset >> 1) & 0xF) << 8) | ((uint)((offset >> 11) & 1) << 7) | 0x63;

    // Two passes: instructions that name a label are resolved once every label is known.
    private sealed class Asm
    {
        private readonly List<Func<Dictionary<string, int>, int, uint>> _insns = [];
        private readonly Dictionary<string, int> _labels = [];

        public void Emit(uint word) => _insns.Add((_, _) => word);

        public void Label(string name) => _labels[name] = _insns.Count * 4;

        public void Branch(int f3, int rs1, int rs2, string label) => _insns.Add((l, pc) => B(f3, rs1, rs2, l[label] - pc));

        public void Jump(string label) => _insns.Add((l, pc) => Enc.Jal(0, l[label] - pc));

        public byte[] Assemble()
        {
            var bytes = new byte[_insns.Count * 4];
            for (int i = 0; i < _insns.Count; i++)
                BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(i * 4), _insns[i](_labels, i * 4));
            return bytes;
        }
    }
}
