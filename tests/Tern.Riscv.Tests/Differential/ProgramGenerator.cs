// Builds a raw RV64 image for the differential tests: many independent sequences, each of which
// restores the scratch memory, loads every register from a seeded table, runs a random body,
// saves the registers and prints them (plus fcsr and a scratch-memory checksum) as hex lines
// on the NS16550A UART. The image then powers off through the SiFive test finisher.
//
// Layout (offsets from RAM base 0x80000000, where QEMU `-bios none` and Tern load a raw image):
//   code:  entry, sequences, finisher, trap handler, dump/print/restore routines
//   data:  (4 KiB aligned) scratch (3 KiB) + save area (1 KiB), pristine scratch copy,
//          line labels, trap save area, per-sequence initial register tables
// The base register x31 points at scratch + 2048 during a body: the body's memory accesses use
// [x31 - 2048, x31 + 1024); the save area starts at x31 + 1024.
using System.Text;

namespace Tern.Riscv.Tests.Differential;

/// <summary>One generated sequence: its initial state and its body, for reports.</summary>
internal sealed class GeneratedSequence
{
    public required int Index { get; init; }

    /// <summary>Initial x0..x31 (x0 and the base register x31 are not loaded from here).</summary>
    public required ulong[] X { get; init; }

    /// <summary>Initial f0..f31 bit patterns (unused when the program has no FP).</summary>
    public required ulong[] F { get; init; }

    public required uint Fcsr { get; init; }

    /// <summary>The body: address and instruction.</summary>
    public List<(ulong Address, Encoded Insn)> Body { get; } = [];
}

/// <summary>A generated image and the sequences in it.</summary>
internal sealed class GeneratedProgram
{
    public required int Seed { get; init; }

    public required Ext Extensions { get; init; }

    public required byte[] Image { get; init; }

    public required IReadOnlyList<GeneratedSequence> Sequences { get; init; }

    public required bool HasFp { get; init; }

    /// <summary>Address of the scratch window start (base register = this + 2048).</summary>
    public required ulong ScratchAddress { get; init; }

    /// <summary>The scratch contents every sequence starts from.</summary>
    public required byte[] PristineScratch { get; init; }

    /// <summary>The labels of the lines each sequence prints, in order.</summary>
    public IReadOnlyList<string> LineLabels => ProgramGenerator.SlotLabels(HasFp).Where(l => l.Length > 0).ToList();

    /// <summary>A listing of one sequence: initial state and body, enough to reproduce it.</summary>
    public string Describe(int index)
    {
        GeneratedSequence s = Sequences.First(q => q.Index == index);
        var sb = new StringBuilder();
        sb.AppendLine($"--- sequence {index} of seed {Seed} ({Extensions}) ---");
        sb.AppendLine($"reproduce: ProgramGenerator.Generate({Seed}, {ExtExpression(Extensions)}, sequences: {index + 1}, only: [{index}])");
        sb.AppendLine($"x31 (base, not dumped) = 0x{ScratchAddress + 2048:x16}; scratch [0x{ScratchAddress:x}, 0x{ScratchAddress + 3072:x}) starts from the seed's pristine block");
        sb.AppendLine("initial integer registers:");
        for (int r = 1; r <= 30; r++)
        {
            sb.Append($"  x{r,-2} = 0x{s.X[r]:x16}");
            if (r % 3 == 0 || r == 30)
            {
                sb.AppendLine();
            }
        }

        if (HasFp)
        {
            sb.AppendLine($"initial fcsr = 0x{s.Fcsr:x2} (frm={s.Fcsr >> 5}, fflags=0x{s.Fcsr & 0x1F:x2})");
            sb.AppendLine("initial FP registers:");
            for (int r = 0; r < 32; r++)
            {
                sb.Append($"  f{r,-2} = 0x{s.F[r]:x16}");
                if (r % 3 == 2 || r == 31)
                {
                    sb.AppendLine();
                }
            }
        }

        sb.AppendLine("body:");
        foreach (var (address, insn) in s.Body)
        {
            sb.AppendLine($"  {address:x8}:  {insn.Hex,-8}  {insn.Text}");
        }

        return sb.ToString();
    }

    private static string ExtExpression(Ext e) => e == Ext.All
        ? "Ext.All"
        : string.Join(" | ", Enum.GetValues<Ext>().Where(x => x != Ext.All && e.HasFlag(x)).Select(x => "Ext." + x));
}

/// <summary>Generates differential-test images.</summary>
internal static class ProgramGenerator
{
    public const ulong RamBase = 0x80000000;
    public const int ScratchBytes = 3072;
    public const int SaveOffset = 1024; // from the base register
    public const int Slots = 66;
    public const int SlotFcsr = 64;
    public const int SlotMem = 65;
    private const int Base = BodyGenerator.Base;
    private const int InitTableBytes = 64 * 8;

    /// <summary>Label of each save slot, or "" when that slot is not printed.</summary>
    public static string[] SlotLabels(bool hasFp)
    {
        var labels = new string[Slots];
        labels[0] = "seq";
        for (int r = 1; r < 32; r++)
        {
            labels[r] = r == Base ? "" : "x" + r;
        }

        for (int r = 0; r < 32; r++)
        {
            labels[32 + r] = hasFp ? "f" + r : "";
        }

        labels[SlotFcsr] = hasFp ? "fcsr" : "";
        labels[SlotMem] = "mem";
        return labels;
    }

    /// <summary>
    /// Generates the image for <paramref name="seed"/>. Each sequence depends only on (seed, its index),
    /// so <paramref name="only"/> rebuilds a subset with identical sequences (for reproducing one).
    /// </summary>
    public static GeneratedProgram Generate(int seed, Ext extensions, int sequences = 100, IReadOnlyCollection<int>? only = null)
    {
        extensions |= Ext.I;
        bool hasFp = extensions.HasFlag(Ext.F);
        bool doubles = extensions.HasFlag(Ext.D);
        var asm = new Asm(RamBase);
        var trap = Asm.NewLabel();
        var dump = Asm.NewLabel();
        var restore = Asm.NewLabel();
        var printTable = Asm.NewLabel();
        var scratch = Asm.NewLabel();
        var pristine = Asm.NewLabel();
        var labels = Asm.NewLabel();
        var trapValues = Asm.NewLabel();
        var trapLabels = Asm.NewLabel();

        // Entry: trap vector, FP on (mstatus.FS = Initial).
        asm.La(5, trap);
        asm.Emit(Rv.Csr("csrrw", 0, Rv.CsrMtvec, 5));
        asm.Li(5, 0x2000);
        asm.Emit(Rv.Csr("csrrs", 0, Rv.CsrMstatus, 5));

        var seqs = new List<GeneratedSequence>();
        var initTables = new List<(Label Label, GeneratedSequence Seq)>();
        for (int index = 0; index < sequences; index++)
        {
            if (only != null && !only.Contains(index))
            {
                continue;
            }

            var r = Rng.For(seed, index);
            var seq = new GeneratedSequence
            {
                Index = index,
                X = new ulong[32],
                F = new ulong[32],
                Fcsr = (uint)(r.Range(0, 4) << 5) | (r.Chance(0.1) ? (uint)r.Next(32) : 0),
            };
            for (int i = 1; i < 31; i++)
            {
                seq.X[i] = ValuePools.Int(r);
            }

            for (int i = 0; i < 32; i++)
            {
                seq.F[i] = hasFp ? ValuePools.FpRegister(r, doubles) : 0;
            }

            var body = new BodyGenerator(r, extensions).Generate(r.Range(25, 50));
            var init = Asm.NewLabel();
            initTables.Add((init, seq));
            seqs.Add(seq);

            // Setup.
            asm.Jal(1, restore);
            if (hasFp)
            {
                asm.Li(1, (int)seq.Fcsr);
                asm.Emit(Rv.Csr("csrrw", 0, Rv.CsrFcsr, 1));
            }

            asm.La(Base, init);
            for (int x = 1; x < 31; x++)
            {
                asm.Emit(Rv.Load("ld", x, Base, 8 * x));
            }

            if (hasFp)
            {
                for (int f = 0; f < 32; f++)
                {
                    asm.Emit(Rv.FLoad(FpFormat.D, f, Base, 256 + (8 * f)));
                }
            }

            asm.La(Base, scratch, 2048);

            // Body.
            int start = asm.Offset;
            foreach (var (offset, insn) in BodyGenerator.Layout(body))
            {
                if (asm.Offset != start + offset)
                {
                    throw new InvalidOperationException("body layout mismatch");
                }

                seq.Body.Add((asm.Pc, insn));
                asm.Emit(insn);
            }

            if (asm.Offset % 4 != 0)
            {
                asm.Emit(Rv.CNop());
            }

            // Save and dump.
            for (int x = 1; x < 31; x++)
            {
                asm.Emit(Rv.Store("sd", x, Base, SaveOffset + (8 * x)));
            }

            if (hasFp)
            {
                for (int f = 0; f < 32; f++)
                {
                    asm.Emit(Rv.FStore(FpFormat.D, f, Base, SaveOffset + (8 * (32 + f))));
                }

                asm.Emit(Rv.Csr("csrrs", 1, Rv.CsrFcsr, 0));
                asm.Emit(Rv.Store("sd", 1, Base, SaveOffset + (8 * SlotFcsr)));
            }

            asm.Li(1, index);
            asm.Emit(Rv.Store("sd", 1, Base, SaveOffset));
            asm.Jal(1, dump);
        }

        // Power off: SiFive test finisher, FINISHER_PASS.
        asm.Li(5, 0x100000);
        asm.Li(6, 0x5555);
        asm.Emit(Rv.Store("sw", 6, 5, 0));
        var hang = Asm.NewLabel();
        asm.Bind(hang);
        asm.J(hang);

        // Trap handler: print mcause/mepc/mtval, then FINISHER_FAIL with code 1.
        asm.Align(4);
        asm.Bind(trap);
        asm.La(18, trapValues);
        asm.Emit(Rv.Csr("csrrs", 5, Rv.CsrMcause, 0));
        asm.Emit(Rv.Store("sd", 5, 18, 0));
        asm.Emit(Rv.Csr("csrrs", 5, Rv.CsrMepc, 0));
        asm.Emit(Rv.Store("sd", 5, 18, 8));
        asm.Emit(Rv.Csr("csrrs", 5, Rv.CsrMtval, 0));
        asm.Emit(Rv.Store("sd", 5, 18, 16));
        asm.La(9, trapLabels);
        asm.Emit(Rv.Addi(19, 18, 24));
        asm.Jal(1, printTable);
        asm.Li(5, 0x100000);
        asm.Li(6, 0x13333);
        asm.Emit(Rv.Store("sw", 6, 5, 0));
        var hang2 = Asm.NewLabel();
        asm.Bind(hang2);
        asm.J(hang2);

        // dump: checksum the scratch window into the mem slot, then print every slot.
        asm.Bind(dump);
        asm.Emit(Rv.Addi(21, 1, 0));
        asm.Emit(Rv.Addi(5, Base, -2048));
        asm.Emit(Rv.Addi(6, Base, SaveOffset));
        asm.Emit(Rv.Addi(7, 0, 0));
        var sumLoop = Asm.NewLabel();
        asm.Bind(sumLoop);
        asm.Emit(Rv.Load("ld", 28, 5, 0));
        asm.Emit(Rv.ShiftI("slli", 29, 7, 5));
        asm.Emit(Rv.ShiftI("srli", 30, 7, 59));
        asm.Emit(Rv.AluR("or", 7, 29, 30));
        asm.Emit(Rv.AluR("xor", 7, 7, 28));
        asm.Emit(Rv.Addi(5, 5, 8));
        asm.Branch("bltu", 5, 6, sumLoop);
        asm.Emit(Rv.Store("sd", 7, Base, SaveOffset + (8 * SlotMem)));
        asm.La(9, labels);
        asm.Emit(Rv.Addi(18, Base, SaveOffset));
        asm.Emit(Rv.Addi(19, 18, 8 * Slots));
        asm.Jal(1, printTable);
        asm.Emit(Rv.Jalr(0, 21, 0));

        // printTable: x9 = labels (8 bytes each, NUL-terminated, empty = skip), x18 = values, x19 = end.
        asm.Bind(printTable);
        var putc = Asm.NewLabel();
        var pLoop = Asm.NewLabel();
        var pLabel = Asm.NewLabel();
        var pLabelDone = Asm.NewLabel();
        var pHex = Asm.NewLabel();
        var pDigit = Asm.NewLabel();
        var pNext = Asm.NewLabel();
        asm.Emit(Rv.Addi(25, 1, 0));
        asm.Emit(Rv.Lui(20, 0x10000));
        asm.Bind(pLoop);
        asm.Emit(Rv.Load("lbu", 10, 9, 0));
        asm.Branch("beq", 10, 0, pNext);
        asm.Emit(Rv.Addi(22, 9, 0));
        asm.Bind(pLabel);
        asm.Emit(Rv.Load("lbu", 10, 22, 0));
        asm.Branch("beq", 10, 0, pLabelDone);
        asm.Jal(1, putc);
        asm.Emit(Rv.Addi(22, 22, 1));
        asm.J(pLabel);
        asm.Bind(pLabelDone);
        asm.Emit(Rv.Addi(10, 0, ' '));
        asm.Jal(1, putc);
        asm.Emit(Rv.Load("ld", 23, 18, 0));
        asm.Emit(Rv.Addi(24, 0, 60));
        asm.Bind(pHex);
        asm.Emit(Rv.AluR("srl", 10, 23, 24));
        asm.Emit(Rv.AluI("andi", 10, 10, 15));
        asm.Emit(Rv.AluI("sltiu", 11, 10, 10));
        asm.Branch("bne", 11, 0, pDigit);
        asm.Emit(Rv.Addi(10, 10, 'a' - '0' - 10));
        asm.Bind(pDigit);
        asm.Emit(Rv.Addi(10, 10, '0'));
        asm.Jal(1, putc);
        asm.Emit(Rv.Addi(24, 24, -4));
        asm.Branch("bge", 24, 0, pHex);
        asm.Emit(Rv.Addi(10, 0, '\n'));
        asm.Jal(1, putc);
        asm.Bind(pNext);
        asm.Emit(Rv.Addi(9, 9, 8));
        asm.Emit(Rv.Addi(18, 18, 8));
        asm.Branch("bltu", 18, 19, pLoop);
        asm.Emit(Rv.Jalr(0, 25, 0));

        // putc: x10 = byte; waits for LSR.THRE (bit 5 of UART+5), then writes THR. x20 = UART base.
        asm.Bind(putc);
        asm.Emit(Rv.Load("lbu", 11, 20, 5));
        asm.Emit(Rv.AluI("andi", 11, 11, 0x20));
        asm.Branch("beq", 11, 0, putc);
        asm.Emit(Rv.Store("sb", 10, 20, 0));
        asm.Ret();

        // restore: copy the pristine block over the scratch window.
        asm.Bind(restore);
        asm.La(5, pristine);
        asm.La(6, scratch);
        asm.La(7, pristine, ScratchBytes);
        var copyLoop = Asm.NewLabel();
        asm.Bind(copyLoop);
        asm.Emit(Rv.Load("ld", 28, 5, 0));
        asm.Emit(Rv.Store("sd", 28, 6, 0));
        asm.Emit(Rv.Addi(5, 5, 8));
        asm.Emit(Rv.Addi(6, 6, 8));
        asm.Branch("bltu", 5, 7, copyLoop);
        asm.Ret();

        // Data.
        asm.Align(4096);
        ulong scratchAddress = asm.Pc;
        asm.Bind(scratch);
        asm.Data(new byte[4096]);

        asm.Bind(pristine);
        var mr = Rng.For(seed, -1);
        var pristineBytes = new byte[ScratchBytes];
        for (int i = 0; i < ScratchBytes; i += 8)
        {
            BitConverter.TryWriteBytes(pristineBytes.AsSpan(i), ValuePools.Memory(mr));
        }

        asm.Data(pristineBytes);

        asm.Bind(labels);
        foreach (string l in SlotLabels(hasFp))
        {
            WriteLabel(asm, l);
        }

        asm.Bind(trapValues);
        asm.Data(new byte[24]);
        asm.Bind(trapLabels);
        WriteLabel(asm, "mcause");
        WriteLabel(asm, "mepc");
        WriteLabel(asm, "mtval");

        foreach (var (label, seq) in initTables)
        {
            asm.Align(8);
            asm.Bind(label);
            for (int x = 0; x < 32; x++)
            {
                asm.U64(seq.X[x]);
            }

            for (int f = 0; f < 32; f++)
            {
                asm.U64(seq.F[f]);
            }
        }

        return new GeneratedProgram
        {
            Seed = seed,
            Extensions = extensions,
            Image = asm.Finish(),
            Sequences = seqs,
            HasFp = hasFp,
            ScratchAddress = scratchAddress,
            PristineScratch = pristineBytes,
        };
    }

    private static void WriteLabel(Asm asm, string label)
    {
        var bytes = new byte[8];
        Encoding.ASCII.GetBytes(label, bytes);
        asm.Data(bytes);
    }
}
