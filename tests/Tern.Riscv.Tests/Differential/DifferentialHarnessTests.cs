// Tests of the differential-test machinery itself: the encoder (against encodings checked with
// an external disassembler), generator determinism, the QEMU reference run, and the mismatch
// report. These need QEMU but not a working Tern.
namespace Tern.Riscv.Tests.Differential;

public sealed class DifferentialHarnessTests
{
    [Fact]
    public void Encoder_matches_reference_encodings()
    {
        (Encoded Insn, uint Bits, string Text)[] cases =
        [
            // Bits as decoded by llvm-mc (riscv64, +m,+a,+f,+d,+c, no aliases, numeric registers).
            (Rv.AluR("add", 6, 12, 30), 0x01e60333, "add x6, x12, x30"),
            (Rv.AluR("remuw", 14, 1, 0), 0x0200f73b, "remuw x14, x1, x0"),
            (Rv.ShiftI("srai", 23, 6, 49), 0x43135b93, "srai x23, x6, 49"),
            (Rv.ShiftI("sraiw", 1, 21, 18), 0x412ad09b, "sraiw x1, x21, 18"),
            (Rv.Lui(5, 0x69df), 0x069df2b7, "lui x5, 0x69df"),
            (Rv.Load("lb", 19, 31, -1995), 0x835f8983, "lb x19, -1995(x31)"),
            (Rv.Store("sd", 15, 31, -1232), 0xb2ffb823, "sd x15, -1232(x31)"),
            (Rv.Branch("beq", 27, 3, 30), 0x003d8f63, "beq x27, x3, pc+30"),
            (Rv.Jal(1, 4), 0x004000ef, "jal x1, pc+4"),
            (Rv.Jalr(25, 25, 8), 0x008c8ce7, "jalr x25, 8(x25)"),
            (Rv.Csr("csrrwi", 12, Rv.CsrFflags, 19), 0x0019d673, "csrrwi x12, fflags, 19"),
            (Rv.Amo("amoadd", 8, 28, 21, 23, false, false), 0x017abe2f, "amoadd.d x28, x23, (x21)"),
            (Rv.Amo("amomax", 8, 18, 1, 8, true, true), 0xa680b92f, "amomax.d.aq.rl x18, x8, (x1)"),
            (Rv.Amo("lr", 4, 22, 23, 0, false, false), 0x100bab2f, "lr.w x22, (x23)"),
            (Rv.Amo("sc", 4, 7, 30, 6, false, false), 0x186f23af, "sc.w x7, x6, (x30)"),
            (Rv.Fma("fmadd", FpFormat.D, 7, 8, 23, 1, 0), 0x0b7403c3, "fmadd.d f7, f8, f23, f1, rne"),
            (Rv.FArith("fdiv", FpFormat.S, 24, 31, 28, 4), 0x19cfcc53, "fdiv.s f24, f31, f28, rmm"),
            (Rv.FSqrt(FpFormat.D, 8, 12, 4), 0x5a064453, "fsqrt.d f8, f12, rmm"),
            (Rv.FCvtToInt(FpFormat.S, 2, 11, 28, 3), 0xc02e35d3, "fcvt.l.s x11, f28, rup"),
            (Rv.FCvtFromInt(FpFormat.S, 0, 29, 3, 4), 0xd001ced3, "fcvt.s.w f29, x3, rmm"),
            (Rv.FCvtFloat(FpFormat.S, 15, 16, 1), 0x401817d3, "fcvt.s.d f15, f16, rtz"),
            (Rv.FMvFromInt(FpFormat.D, 25, 20), 0xf20a0cd3, "fmv.d.x f25, x20"),
            (Rv.FMvToInt(FpFormat.S, 4, 28), 0xe00e0253, "fmv.x.w x4, f28"),
            (Rv.FCompare("fle", FpFormat.D, 23, 31, 3), 0xa23f8bd3, "fle.d x23, f31, f3"),
            (Rv.FSgnj("fsgnjx", FpFormat.S, 6, 17, 17), 0x2118a353, "fsgnjx.s f6, f17, f17"),
            (Rv.FMinMax(true, FpFormat.D, 14, 25, 21), 0x2b5c9753, "fmax.d f14, f25, f21"),
            (Rv.FLoad(FpFormat.D, 23, 31, -1464), 0xa48fbb87, "fld f23, -1464(x31)"),
            (Rv.CLoadStore("c.fld", 10, 8, 248), 0x3c68, "c.fld f10, 248(x8)"),
            (Rv.CLoadStore("c.lw", 14, 15, 100), 0x53f8, "c.lw x14, 100(x15)"),
            (Rv.CLoadStore("c.sd", 11, 14, 88), 0xef2c, "c.sd x11, 88(x14)"),
            (Rv.CAddi16sp(144), 0x6149, "c.addi16sp x2, 144"),
            (Rv.CAddi4spn(11, 924), 0x0f6c, "c.addi4spn x11, x2, 924"),
            (Rv.CLui(8, -8), 0x7461, "c.lui x8, 0xffff8"),
            (Rv.CImm("c.addiw", 17, -29), 0x388d, "c.addiw x17, -29"),
            (Rv.CShiftAndi("c.andi", 15, 11), 0x8bad, "c.andi x15, 11"),
            (Rv.CArith("c.addw", 13, 9), 0x9ea5, "c.addw x13, x9"),
            (Rv.CJ(14), 0xa039, "c.j pc+14"),
            (Rv.CBranch(false, 12, 6), 0xc219, "c.beqz x12, pc+6"),
            (Rv.CBranch(true, 12, 22), 0xea19, "c.bnez x12, pc+22"),
            (Rv.CLoadSp("c.lwsp", 19, 100), 0x5996, "c.lwsp x19, 100(x2)"),
            (Rv.CLoadSp("c.ldsp", 12, 480), 0x761e, "c.ldsp x12, 480(x2)"),
            (Rv.CStoreSp("c.fsdsp", 15, 104), 0xb4be, "c.fsdsp f15, 104(x2)"),
            (Rv.CJumpReg(true, 26), 0x9d02, "c.jalr x26"),
            (Rv.CMv(11, 28), 0x85f2, "c.mv x11, x28"),
        ];
        foreach (var (insn, bits, text) in cases)
        {
            Assert.Equal((text, bits), (insn.Text, insn.Bits));
            Assert.Equal(bits <= 0xFFFF && (bits & 3) != 3 ? 2 : 4, insn.Length);
        }
    }

    [Fact]
    public void Generation_is_deterministic_and_sequences_reproduce_alone()
    {
        var a = ProgramGenerator.Generate(42, Ext.All, 20);
        var b = ProgramGenerator.Generate(42, Ext.All, 20);
        Assert.Equal(a.Image, b.Image);
        Assert.NotEqual(a.Image, ProgramGenerator.Generate(43, Ext.All, 20).Image);

        var alone = ProgramGenerator.Generate(42, Ext.All, 20, only: [13]);
        GeneratedSequence full = a.Sequences[13];
        GeneratedSequence single = Assert.Single(alone.Sequences);
        Assert.Equal(13, single.Index);
        Assert.Equal(full.X, single.X);
        Assert.Equal(full.F, single.F);
        Assert.Equal(full.Fcsr, single.Fcsr);
        Assert.Equal(full.Body.Select(i => i.Insn), single.Body.Select(i => i.Insn));
    }

    [Fact]
    public void Qemu_reference_runs_are_complete_and_repeatable()
    {
        var program = ProgramGenerator.Generate(7, Ext.All, 10);
        QemuResult first = Qemu.Run(program.Image, TimeSpan.FromSeconds(60));
        QemuResult second = Qemu.Run(program.Image, TimeSpan.FromSeconds(60));
        Assert.False(first.TimedOut);
        Assert.Equal(0, first.ExitCode);
        var lines = DumpComparison.Parse(first.Output);
        Assert.Null(DumpComparison.CheckWellFormed(program, lines));
        Assert.Equal(10 * 65, lines.Count);
        Assert.Equal(first.Output, second.Output);
        // The base register x31 is excluded; the rest are printed in order.
        Assert.Equal(["seq", "x1"], program.LineLabels.Take(2));
        Assert.DoesNotContain("x31", program.LineLabels);
    }

    [Fact]
    public void Mismatch_report_names_seed_sequence_register_and_listing()
    {
        var program = ProgramGenerator.Generate(9, Ext.I | Ext.M, 5);
        var qemu = DumpComparison.Parse(Qemu.Run(program.Image, TimeSpan.FromSeconds(60)).Output);
        Assert.Null(DumpComparison.Compare(program, "M", qemu, [.. qemu], "test"));

        var tern = qemu.ToList();
        int at = tern.FindIndex(l => l.Label == "seq" && l.Value == 3) + 7; // x7 of sequence 3
        tern[at] = tern[at] with { Value = tern[at].Value ^ 0x10 };
        string report = DumpComparison.Compare(program, "M", qemu, tern, "test")!;
        Assert.Contains("seed 9", report);
        Assert.Contains("sequence 3", report);
        Assert.Contains($"first difference at x7: QEMU 0x{qemu[at].Value:x16}, Tern 0x{tern[at].Value:x16}", report);
        Assert.Contains(program.Sequences[3].Body[0].Insn.Hex, report);
        Assert.Contains(program.Sequences[3].Body[0].Insn.Text, report);

        string truncated = DumpComparison.Compare(program, "M", qemu, qemu.Take(100).ToList(), "test")!;
        Assert.Contains("ends after 100", truncated);
    }
}
