// A strict reader of 64-bit little-endian RISC-V ELF executables: the loadable segments, the
// entry point and the symbol table. Every offset and size is checked, so a malformed or
// hostile file is refused with a message that names what is wrong.
using System.Buffers.Binary;
using System.Text;

namespace Tern.Machine.Boot;

/// <summary>An image that cannot be loaded, with the reason.</summary>
public sealed class InvalidImageException(string message) : Exception(message);

/// <summary>One PT_LOAD segment.</summary>
public sealed record ElfSegment(ulong PhysicalAddress, ulong VirtualAddress, ReadOnlyMemory<byte> Data, ulong MemorySize);

/// <summary>A parsed RISC-V ELF64 executable.</summary>
public sealed class ElfImage
{
    private const ushort MachineRiscv = 243;
    private readonly Dictionary<string, ulong> _symbols = new(StringComparer.Ordinal);

    private ElfImage(ulong entry, List<ElfSegment> segments)
    {
        Entry = entry;
        Segments = segments;
    }

    /// <summary>The entry point.</summary>
    public ulong Entry { get; }

    /// <summary>The loadable segments.</summary>
    public IReadOnlyList<ElfSegment> Segments { get; }

    /// <summary>True when <paramref name="image"/> starts with the ELF magic.</summary>
    public static bool IsElf(ReadOnlySpan<byte> image) =>
        image.Length >= 4 && image[0] == 0x7F && image[1] == (byte)'E' && image[2] == (byte)'L' && image[3] == (byte)'F';

    /// <summary>Looks up a symbol's value.</summary>
    public bool TryGetSymbol(string name, out ulong value) => _symbols.TryGetValue(name, out value);

    /// <summary>Parses an ELF file. Throws <see cref="InvalidImageException"/> for anything malformed.</summary>
    public static ElfImage Parse(ReadOnlyMemory<byte> file)
    {
        var f = file.Span;
        if (!IsElf(f))
            throw new InvalidImageException("not an ELF file (bad magic)");
        if (f.Length < 64)
            throw new InvalidImageException("ELF header truncated");
        if (f[4] != 2)
            throw new InvalidImageException("not a 64-bit ELF (EI_CLASS != ELFCLASS64)");
        if (f[5] != 1)
            throw new InvalidImageException("not a little-endian ELF");
        ushort machine = U16(f, 18);
        if (machine != MachineRiscv)
            throw new InvalidImageException($"ELF machine is {machine}, not RISC-V (243)");
        ulong entry = U64(f, 24);
        ulong phoff = U64(f, 32);
        ulong shoff = U64(f, 40);
        ushort phentsize = U16(f, 54), phnum = U16(f, 56), shentsize = U16(f, 58), shnum = U16(f, 60);
        if (phnum == 0)
            throw new InvalidImageException("ELF has no program headers");
        if (phentsize < 56)
            throw new InvalidImageException($"ELF program header size {phentsize} is too small");
        CheckRange(f, phoff, (ulong)phentsize * phnum, "program header table");

        var segments = new List<ElfSegment>();
        for (int i = 0; i < phnum; i++)
        {
            int p = (int)phoff + (i * phentsize);
            if (U32(f, p) != 1) // PT_LOAD
                continue;
            ulong offset = U64(f, p + 8), vaddr = U64(f, p + 16), paddr = U64(f, p + 24);
            ulong filesz = U64(f, p + 32), memsz = U64(f, p + 40);
            if (filesz > memsz)
                throw new InvalidImageException($"segment {i}: file size 0x{filesz:x} exceeds memory size 0x{memsz:x}");
            CheckRange(f, offset, filesz, $"segment {i}");
            segments.Add(new ElfSegment(paddr, vaddr, file.Slice((int)offset, (int)filesz), memsz));
        }
        if (segments.Count == 0)
            throw new InvalidImageException("ELF has no loadable segments");
        var image = new ElfImage(entry, segments);
        if (shoff != 0 && shnum != 0)
            image.ReadSymbols(f, shoff, shentsize, shnum);
        return image;
    }

    private void ReadSymbols(ReadOnlySpan<byte> f, ulong shoff, ushort shentsize, ushort shnum)
    {
        if (shentsize < 64)
            throw new InvalidImageException($"ELF section header size {shentsize} is too small");
        CheckRange(f, shoff, (ulong)shentsize * shnum, "section header table");
        for (int i = 0; i < shnum; i++)
        {
            int s = (int)shoff + (i * shentsize);
            if (U32(f, s + 4) != 2) // SHT_SYMTAB
                continue;
            ulong symOff = U64(f, s + 24), symSize = U64(f, s + 32);
            uint link = U32(f, s + 40);
            if (link >= shnum)
                throw new InvalidImageException($"symbol table links to missing section {link}");
            int str = (int)shoff + ((int)link * shentsize);
            ulong strOff = U64(f, str + 24), strSize = U64(f, str + 32);
            CheckRange(f, symOff, symSize, "symbol table");
            CheckRange(f, strOff, strSize, "string table");
            var strings = f.Slice((int)strOff, (int)strSize);
            for (ulong e = 0; e + 24 <= symSize; e += 24)
            {
                int sym = (int)(symOff + e);
                uint nameOff = U32(f, sym);
                if (nameOff == 0 || nameOff >= strSize)
                    continue;
                var rest = strings[(int)nameOff..];
                int end = rest.IndexOf((byte)0);
                if (end < 0)
                    throw new InvalidImageException("symbol name runs past the string table");
                string name = Encoding.UTF8.GetString(rest[..end]);
                _symbols.TryAdd(name, U64(f, sym + 8));
            }
        }
    }

    private static void CheckRange(ReadOnlySpan<byte> f, ulong offset, ulong length, string what)
    {
        if (offset > (ulong)f.Length || length > (ulong)f.Length - offset)
            throw new InvalidImageException($"{what} (offset 0x{offset:x}, size 0x{length:x}) lies outside the {f.Length}-byte file");
    }

    private static ushort U16(ReadOnlySpan<byte> f, int o) => BinaryPrimitives.ReadUInt16LittleEndian(f[o..]);
    private static uint U32(ReadOnlySpan<byte> f, int o) => BinaryPrimitives.ReadUInt32LittleEndian(f[o..]);
    private static ulong U64(ReadOnlySpan<byte> f, int o) => BinaryPrimitives.ReadUInt64LittleEndian(f[o..]);
}
