// Properties of the decoder over the whole encoding space (CsCheck): every 32-bit word decodes
// to exactly one table line or to Illegal, and every 16-bit parcel either is reserved or
// expands to a legal 32-bit instruction of the same operation.
using CsCheck;
using Tern.Riscv;

namespace Tern.Riscv.Tests.Cpu;

public class DecoderPropertyTests
{
    [Fact]
    public void Every_32_bit_word_decodes_to_one_instruction_or_illegal()
    {
        Gen.UInt.Select(w => w | 3).Sample(raw =>
        {
            var d = Decoder.Decode(raw);
            int matches = Decoder.MatchCount(raw);
            Assert.True(matches <= 1, $"0x{raw:x8} matches {matches} table lines");
            Assert.Equal(4, d.Length);
            if (matches == 0)
                Assert.Equal(Op.Illegal, d.Op);
        }, iter: 200_000);
    }

    [Fact]
    public void Every_table_line_decodes_to_its_own_operation_whatever_its_operand_fields()
    {
        var lines = Decoder.Lines.ToList();
        Assert.Equal((int)Op.Count - 1, lines.Select(l => l.Op).Distinct().Count());
        Gen.UInt.Sample(noise =>
        {
            foreach (var (mask, match, op) in lines)
            {
                uint raw = match | (noise & ~mask);
                var d = Decoder.Decode(raw);
                uint rm = (raw >> 12) & 7;
                // A reserved static rounding mode (5 or 6) in an rm field makes the word illegal.
                if (d.Op == Op.Illegal && rm is 5 or 6 && (raw & 0x7F) is 0x43 or 0x47 or 0x4B or 0x4F or 0x53)
                    continue;
                Assert.True(op == d.Op, $"0x{raw:x8} should decode to {op}, got {d.Op}");
            }
        }, iter: 2_000);
    }

    [Fact]
    public void Every_compressed_parcel_is_reserved_or_expands_to_a_legal_instruction_of_the_same_operation()
    {
        for (uint c = 0; c <= 0xFFFF; c++)
        {
            if ((c & 3) == 3)
                continue;
            uint expanded = Compressed.Expand((ushort)c);
            var d = Decoder.Decode(c);
            Assert.Equal(2, d.Length);
            Assert.Equal(c, d.Raw);
            if (expanded == 0)
            {
                Assert.Equal(Op.Illegal, d.Op);
                continue;
            }
            var full = Decoder.Decode(expanded);
            Assert.NotEqual(Op.Illegal, full.Op);
            Assert.Equal(full.Op, d.Op);
            Assert.Equal((full.Rd, full.Rs1, full.Rs2, full.Imm), (d.Rd, d.Rs1, d.Rs2, d.Imm));
        }
    }

    [Theory]
    [InlineData(0x0000, "all-zero parcel")]
    [InlineData(0x8000, "reserved quadrant-0 funct3=100")]
    [InlineData(0x6081, "c.lui x1, 0 (zero immediate)")]
    [InlineData(0x6101, "c.addi16sp 0 (zero immediate)")]
    [InlineData(0x8002, "c.jr x0")]
    [InlineData(0x4002, "c.lwsp x0")]
    [InlineData(0x2001, "c.addiw x0")]
    public void Reserved_compressed_encodings_are_illegal(int parcel, string what)
    {
        Assert.True(Decoder.Decode((uint)parcel).Op == Op.Illegal, what);
    }

    [Theory]
    [InlineData(0x4505, Op.Addi, 10, 0, 1)]          // c.li a0, 1
    [InlineData(0x0505, Op.Addi, 10, 10, 1)]         // c.addi a0, 1
    [InlineData(0x1141, Op.Addi, 2, 2, -16)]         // c.addi sp, -16
    [InlineData(0x0028, Op.Addi, 10, 2, 8)]          // c.addi4spn a0, sp, 8
    [InlineData(0x8082, Op.Jalr, Decoder.Sink, 1, 0)] // c.jr ra (ret)
    [InlineData(0x852e, Op.Add, 10, 0, 0)]           // c.mv a0, a1 (rs2 checked separately)
    [InlineData(0x6522, Op.Ld, 10, 2, 8)]            // c.ldsp a0, 8(sp)
    [InlineData(0xe42a, Op.Sd, 0, 2, 8)]             // c.sdsp a0, 8(sp)
    public void Compressed_instructions_decode_to_their_32_bit_operations(int parcel, Op op, int rd, int rs1, int imm)
    {
        var d = Decoder.Decode((uint)parcel);
        Assert.Equal(op, d.Op);
        Assert.Equal(rd, d.Rd == Decoder.Sink && rd != Decoder.Sink ? 0 : d.Rd);
        Assert.Equal(rs1, d.Rs1);
        Assert.Equal(imm, d.Imm);
    }
}
