// The machine-state stream as a file: magic + version, then records (tag, length, payload),
// then a CRC32C of everything before it. Records: SHAP (the machine's shape), STAT (harts,
// devices, clock, statistics: see StateCodec) and any number of PAGE records carrying runs of
// non-zero RAM pages; zero pages are left out. docs/snapshot-format.md is the reference.
// Loading checks the whole file (structure and checksum) before building anything, and
// builds a fresh machine, so a bad file never leaves a half-loaded guest.
using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;
using Tern.Riscv;

namespace Tern.Machine.Snapshot;

/// <summary>Writes and reads snapshot files.</summary>
public static class SnapshotFile
{
    /// <summary>The format version this build writes.</summary>
    public const uint Version = 1;

    private static readonly byte[] Magic = "TERNSNAP"u8.ToArray();
    private const uint TagShape = 0x50414853;  // "SHAP"
    private const uint TagState = 0x54415453;  // "STAT"
    private const uint TagPages = 0x45474150;  // "PAGE"
    private const uint TagEnd = 0x20444E45;    // "END "
    private const int MaxPagesPerRecord = 256;

    /// <summary>Saves <paramref name="machine"/> (which must not be running) to <paramref name="output"/>.</summary>
    public static void Save(VirtMachine machine, Stream output)
    {
        ArgumentNullException.ThrowIfNull(machine);
        ArgumentNullException.ThrowIfNull(output);
        var crc = new Crc32(Crc32ParameterSet.Crc32C);
        void Emit(ReadOnlySpan<byte> bytes)
        {
            crc.Append(bytes);
            output.Write(bytes);
        }
        void Record(uint tag, ReadOnlySpan<byte> payload)
        {
            Span<byte> head = stackalloc byte[12];
            BinaryPrimitives.WriteUInt32LittleEndian(head, tag);
            BinaryPrimitives.WriteUInt64LittleEndian(head[4..], (ulong)payload.Length);
            Emit(head);
            Emit(payload);
        }

        Span<byte> header = stackalloc byte[16];
        Magic.CopyTo(header);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], Version);
        Emit(header);

        var state = machine.CaptureState();
        var w = new StateWriter();
        StateCodec.Write(w, state.Shape);
        Record(TagShape, w.ToArray());
        w = new StateWriter();
        StateCodec.Write(w, state);
        Record(TagState, w.ToArray());

        var memory = machine.Memory;
        int page = 0;
        while (page < memory.PageCount)
        {
            if (IsZeroPage(memory, page))
            {
                page++;
                continue;
            }
            int first = page;
            while (page < memory.PageCount && page - first < MaxPagesPerRecord && !IsZeroPage(memory, page))
                page++;
            int count = page - first;
            var payload = new byte[12 + (count * GuestMemory.PageSize)];
            BinaryPrimitives.WriteUInt64LittleEndian(payload, (ulong)first);
            BinaryPrimitives.WriteUInt32LittleEndian(payload.AsSpan(8), (uint)count);
            memory.Read(memory.Base + ((ulong)first * GuestMemory.PageSize), payload.AsSpan(12));
            Record(TagPages, payload);
        }

        Span<byte> end = stackalloc byte[16];
        BinaryPrimitives.WriteUInt32LittleEndian(end, TagEnd);
        BinaryPrimitives.WriteUInt64LittleEndian(end[4..], 4);
        crc.Append(end[..12]);
        BinaryPrimitives.WriteUInt32LittleEndian(end[12..], crc.GetCurrentHashAsUInt32());
        output.Write(end);
        output.Flush();
    }

    private static bool IsZeroPage(GuestMemory memory, int page) =>
        !memory.Span(memory.Base + ((ulong)page * GuestMemory.PageSize), GuestMemory.PageSize).ContainsAnyExcept((byte)0);

    /// <summary>
    /// Reads a snapshot into a new machine whose console is <paramref name="console"/>;
    /// <paramref name="attach"/> plugs in the same devices the saved machine had (its disks are
    /// not part of the snapshot) before the state is loaded.
    /// Throws <see cref="InvalidSnapshotException"/> naming the problem for a truncated,
    /// corrupted or wrong-version file.
    /// </summary>
    public static VirtMachine Load(Stream input, Stream console, Action<VirtMachine>? attach = null)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(console);
        if (!input.CanSeek)
            throw new ArgumentException("snapshot loading needs a seekable stream", nameof(input));
        Verify(input);
        input.Position = 16;
        var head = new byte[12];
        MachineShape? shape = null;
        MachineState? state = null;
        VirtMachine? machine = null;
        try
        {
            while (true)
            {
                input.ReadExactly(head);
                uint tag = BinaryPrimitives.ReadUInt32LittleEndian(head);
                long length = (long)BinaryPrimitives.ReadUInt64LittleEndian(head.AsSpan(4));
                if (tag == TagEnd)
                    break;
                var payload = new byte[length];
                input.ReadExactly(payload);
                switch (tag)
                {
                    case TagShape:
                        var sr = new StateReader(payload, "SHAP record");
                        shape = StateCodec.ReadShape(sr);
                        sr.End();
                        machine = new VirtMachine(new MachineOptions { MemoryBytes = shape.MemoryBytes, Harts = shape.Harts, Clock = shape.Clock, Console = console });
                        attach?.Invoke(machine);
                        break;
                    case TagState:
                        if (shape is null)
                            throw new InvalidSnapshotException("STAT record comes before the SHAP record");
                        var r = new StateReader(payload, "STAT record");
                        state = StateCodec.Read(r, shape);
                        r.End();
                        break;
                    case TagPages:
                        if (machine is null)
                            throw new InvalidSnapshotException("PAGE record comes before the SHAP record");
                        LoadPages(machine.Memory, payload);
                        break;
                    default:
                        throw new InvalidSnapshotException($"unknown record '{TagName(tag)}'");
                }
            }
            if (machine is null || state is null)
                throw new InvalidSnapshotException("the snapshot has no machine state");
            machine.RestoreState(state);
            return machine;
        }
        catch (Exception e) when (e is ArgumentException or EndOfStreamException)
        {
            machine?.Dispose();
            throw new InvalidSnapshotException(e.Message);
        }
        catch
        {
            machine?.Dispose();
            throw;
        }
    }

    private static void LoadPages(GuestMemory memory, byte[] payload)
    {
        if (payload.Length < 12)
            throw new InvalidSnapshotException("PAGE record truncated");
        ulong first = BinaryPrimitives.ReadUInt64LittleEndian(payload);
        uint count = BinaryPrimitives.ReadUInt32LittleEndian(payload.AsSpan(8));
        if ((ulong)payload.Length != 12 + ((ulong)count * GuestMemory.PageSize))
            throw new InvalidSnapshotException($"PAGE record of {payload.Length} bytes does not hold {count} pages");
        if (first > (ulong)memory.PageCount || count > (ulong)memory.PageCount - first)
            throw new InvalidSnapshotException($"pages {first}..{first + count} lie outside the guest's {memory.PageCount} pages");
        memory.Write(memory.Base + (first * GuestMemory.PageSize), payload.AsSpan(12));
    }

    // Walks the records and checks the trailing CRC32C before anything is built.
    private static void Verify(Stream input)
    {
        input.Position = 0;
        long total = input.Length;
        var header = new byte[16];
        if (total < 16 || input.Read(header) != 16 || !header.AsSpan(0, 8).SequenceEqual(Magic))
            throw new InvalidSnapshotException("not a Tern snapshot (bad magic)");
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(8));
        if (version != Version)
            throw new InvalidSnapshotException($"snapshot format version {version} is not supported (this build reads version {Version})");
        var crc = new Crc32(Crc32ParameterSet.Crc32C);
        crc.Append(header);
        var head = new byte[12];
        var buffer = new byte[1 << 16];
        while (true)
        {
            if (total - input.Position < 12)
                throw new InvalidSnapshotException($"snapshot truncated at byte {input.Position} (no end record)");
            input.ReadExactly(head);
            crc.Append(head);
            uint tag = BinaryPrimitives.ReadUInt32LittleEndian(head);
            ulong length = BinaryPrimitives.ReadUInt64LittleEndian(head.AsSpan(4));
            if (tag == TagEnd)
            {
                if (length != 4 || total - input.Position != 4)
                    throw new InvalidSnapshotException("snapshot end record is malformed or followed by extra bytes");
                var stored = new byte[4];
                input.ReadExactly(stored);
                if (BinaryPrimitives.ReadUInt32LittleEndian(stored) != crc.GetCurrentHashAsUInt32())
                    throw new InvalidSnapshotException("snapshot is corrupted (checksum mismatch)");
                return;
            }
            if (tag is not (TagShape or TagState or TagPages))
                throw new InvalidSnapshotException($"snapshot is corrupted (unknown record '{TagName(tag)}' at byte {input.Position - 12})");
            if (length > (ulong)(total - input.Position))
                throw new InvalidSnapshotException($"snapshot truncated: a '{TagName(tag)}' record of {length} bytes runs past the end of the file");
            for (ulong left = length; left > 0;)
            {
                int n = (int)Math.Min(left, (ulong)buffer.Length);
                input.ReadExactly(buffer, 0, n);
                crc.Append(buffer.AsSpan(0, n));
                left -= (ulong)n;
            }
        }
    }

    private static string TagName(uint tag)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, tag);
        foreach (byte c in b)
        {
            if (c is < 0x20 or > 0x7E)
                return $"0x{tag:x8}";
        }
        return Encoding.ASCII.GetString(b);
    }
}
