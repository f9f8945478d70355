// Writes minimal RISC-V ELF64 executables for tests: one PT_LOAD segment and an optional
// symbol table, so loader behaviour can be checked on exact, hand-made (and hand-broken) files.
using System.Buffers.Binary;
using System.Text;

namespace Tern.Tests.Shared;

internal static class ElfBuilder
{
    public static byte[] Build(ulong loadAddress, byte[] code, ulong entry, IReadOnlyDictionary<string, ulong>? symbols = null, ulong extraMemory = 0)
    {
        symbols ??= new Dictionary<string, ulong>();
        const int ehSize = 64, phSize = 56, shSize = 64;
        int codeOff = ehSize + phSize;
        var strtab = new MemoryStream();
        strtab.WriteByte(0);
        var symtab = new MemoryStream();
        symtab.Write(new byte[24]); // the null symbol
        foreach (var (name, value) in symbols)
        {
            var sym = new byte[24];
            BinaryPrimitives.WriteUInt32LittleEndian(sym, (uint)strtab.Length);
            sym[4] = 0x10; // STB_GLOBAL, STT_NOTYPE
            BinaryPrimitives.WriteUInt16LittleEndian(sym.AsSpan(6), 1);
            BinaryPrimitives.WriteUInt64LittleEndian(sym.AsSpan(8), value);
            symtab.Write(sym);
            strtab.Write(Encoding.ASCII.GetBytes(name + "\0"));
        }
        int symOff = codeOff + code.Length;
        int strOff = symOff + (int)symtab.Length;
        int shOff = (strOff + (int)strtab.Length + 7) & ~7;
        var f = new byte[shOff + (3 * shSize)];
        "\u007fELF"u8.CopyTo(f);
        f[4] = 2; f[5] = 1; f[6] = 1;
        W16(f, 16, 2); W16(f, 18, 243); W32(f, 20, 1);
        W64(f, 24, entry); W64(f, 32, ehSize); W64(f, 40, (ulong)shOff);
        W16(f, 52, ehSize); W16(f, 54, phSize); W16(f, 56, 1); W16(f, 58, shSize); W16(f, 60, 3); W16(f, 62, 0);
        int p = ehSize;
        W32(f, p, 1); W32(f, p + 4, 7); W64(f, p + 8, (ulong)codeOff); W64(f, p + 16, loadAddress); W64(f, p + 24, loadAddress);
        W64(f, p + 32, (ulong)code.Length); W64(f, p + 40, (ulong)code.Length + extraMemory); W64(f, p + 48, 0x1000);
        code.CopyTo(f, codeOff);
        symtab.ToArray().CopyTo(f, symOff);
        strtab.ToArray().CopyTo(f, strOff);
        // section 1: .symtab (links to 2), section 2: .strtab
        int s1 = shOff + shSize, s2 = shOff + (2 * shSize);
        W32(f, s1 + 4, 2); W64(f, s1 + 24, (ulong)symOff); W64(f, s1 + 32, (ulong)symtab.Length); W32(f, s1 + 40, 2); W64(f, s1 + 56, 24);
        W32(f, s2 + 4, 3); W64(f, s2 + 24, (ulong)strOff); W64(f, s2 + 32, (ulong)strtab.Length);
        return f;
    }

    public static byte[] Words(params uint[] words)
    {
        var b = new byte[words.Length * 4];
        for (int i = 0; i < words.Length; i++)
            BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(i * 4), words[i]);
        return b;
    }

    private static void W16(byte[] f, int o, ushort v) => BinaryPrimitives.WriteUInt16LittleEndian(f.AsSpan(o), v);
    private static void W32(byte[] f, int o, uint v) => BinaryPrimitives.WriteUInt32LittleEndian(f.AsSpan(o), v);
    private static void W64(byte[] f, int o, ulong v) => BinaryPrimitives.WriteUInt64LittleEndian(f.AsSpan(o), v);
}
