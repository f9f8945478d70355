// Parses the register dumps a generated image prints and compares a Tern run against QEMU's,
// producing a report that names the seed, sequence, first differing register and the listing.
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Tern.Riscv.Tests.Differential;

/// <summary>One dump line: a label (seq, x5, f3, fcsr, mem, mcause, ...) and a 64-bit value.</summary>
internal readonly record struct DumpLine(string Label, ulong Value)
{
    public override string ToString() => $"{Label} {Value:x16}";
}

/// <summary>Parsing and comparison of dump output.</summary>
internal static partial class DumpComparison
{
    [GeneratedRegex("^([a-z][a-z0-9]*) ([0-9a-f]{16})$")]
    private static partial Regex LineRegex();

    /// <summary>The dump lines in <paramref name="text"/>; anything else (e.g. emulator chatter) is dropped.</summary>
    public static List<DumpLine> Parse(string text)
    {
        var lines = new List<DumpLine>();
        foreach (string raw in text.Split('\n'))
        {
            Match m = LineRegex().Match(raw.TrimEnd('\r'));
            if (m.Success)
            {
                lines.Add(new DumpLine(m.Groups[1].Value, ulong.Parse(m.Groups[2].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture)));
            }
        }

        return lines;
    }

    /// <summary>The lines a complete run of <paramref name="program"/> must print, values aside.</summary>
    public static int ExpectedLineCount(GeneratedProgram program) => program.Sequences.Count * program.LineLabels.Count;

    /// <summary>Checks that a reference (QEMU) dump is complete and well-formed; returns a problem or null.</summary>
    public static string? CheckWellFormed(GeneratedProgram program, List<DumpLine> lines)
    {
        var labels = program.LineLabels;
        int expected = ExpectedLineCount(program);
        for (int i = 0; i < Math.Min(lines.Count, expected); i++)
        {
            var seq = program.Sequences[i / labels.Count];
            string label = labels[i % labels.Count];
            if (lines[i].Label != label)
            {
                return $"line {i}: expected label '{label}', got '{lines[i]}'" + TrapNote(lines);
            }

            if (label == "seq" && lines[i].Value != (ulong)seq.Index)
            {
                return $"line {i}: expected sequence {seq.Index}, got {lines[i].Value}";
            }
        }

        if (lines.Count != expected)
        {
            return $"expected {expected} dump lines, got {lines.Count}" + TrapNote(lines);
        }

        return null;
    }

    private static string TrapNote(List<DumpLine> lines)
    {
        int at = lines.FindIndex(l => l.Label == "mcause");
        if (at < 0)
        {
            return "";
        }

        string Get(string name) => lines.Skip(at).FirstOrDefault(l => l.Label == name).Value.ToString("x16");
        return $" (the guest trapped: mcause=0x{Get("mcause")}, mepc=0x{Get("mepc")}, mtval=0x{Get("mtval")})";
    }

    /// <summary>
    /// Compares Tern's dump with QEMU's line by line. Returns null when identical, else a report.
    /// <paramref name="ternInfo"/> describes how the Tern run ended (exit reason, counts).
    /// </summary>
    public static string? Compare(GeneratedProgram program, string group, List<DumpLine> qemu, List<DumpLine> tern, string ternInfo)
    {
        int n = Math.Min(qemu.Count, tern.Count);
        int first = -1;
        for (int i = 0; i < n; i++)
        {
            if (qemu[i] != tern[i])
            {
                first = i;
                break;
            }
        }

        if (first < 0 && qemu.Count == tern.Count)
        {
            return null;
        }

        var sb = new StringBuilder();
        int at = first >= 0 ? first : n;
        int seqIndex = SequenceAt(qemu, at);
        string head = $"Differential mismatch (group {group}, seed {program.Seed}, sequence {seqIndex})";
        if (first >= 0)
        {
            sb.AppendLine($"{head}: first difference at {qemu[first].Label}: QEMU 0x{qemu[first].Value:x16}, Tern 0x{tern[first].Value:x16}"
                + (qemu[first].Label != tern[first].Label ? $" (Tern printed label '{tern[first].Label}')" : ""));
            sb.AppendLine("All differences in this sequence (QEMU vs Tern):");
            for (int i = first; i < n && !(i > first && qemu[i].Label == "seq"); i++)
            {
                if (qemu[i] != tern[i])
                {
                    sb.AppendLine($"  {qemu[i].Label,-5} qemu=0x{qemu[i].Value:x16}  tern=0x{tern[i].Value:x16}"
                        + (qemu[i].Label != tern[i].Label ? $"  (tern label {tern[i].Label})" : ""));
                }
            }
        }
        else if (tern.Count < qemu.Count)
        {
            sb.AppendLine($"{head}: Tern's output ends after {tern.Count} of {qemu.Count} dump lines; next expected line: {qemu[n]}" + TrapNote(tern));
        }
        else
        {
            sb.AppendLine($"{head}: Tern printed {tern.Count - qemu.Count} extra dump lines, first: {tern[n]}" + TrapNote(tern));
        }

        sb.AppendLine("Tern run: " + ternInfo);
        GeneratedSequence? seq = program.Sequences.FirstOrDefault(s => s.Index == seqIndex);
        if (seq != null)
        {
            if (first >= 0)
            {
                string label = qemu[first].Label;
                var writers = seq.Body.Where(b => Writes(b.Insn, label)).Select(b => $"  {b.Address:x8}:  {b.Insn.Hex,-8}  {b.Insn.Text}").ToList();
                if (writers.Count > 0)
                {
                    sb.AppendLine($"Body instructions that write {label}:");
                    foreach (string w in writers)
                    {
                        sb.AppendLine(w);
                    }
                }
            }

            sb.Append(program.Describe(seqIndex));
        }

        return sb.ToString();
    }

    private static int SequenceAt(List<DumpLine> lines, int index)
    {
        for (int i = Math.Min(index, lines.Count - 1); i >= 0; i--)
        {
            if (lines[i].Label == "seq")
            {
                return (int)lines[i].Value;
            }
        }

        return -1;
    }

    /// <summary>Whether an instruction's text names <paramref name="label"/> as its destination (mem: any store/AMO).</summary>
    private static bool Writes(Encoded insn, string label)
    {
        string text = insn.Text;
        int space = text.IndexOf(' ');
        if (space < 0)
        {
            return false;
        }

        string mnemonic = text[..space];
        string[] ops = text[(space + 1)..].Split(", ");
        if (label == "mem")
        {
            return mnemonic is "sb" or "sh" or "sw" or "sd" or "fsw" or "fsd" or "c.sw" or "c.sd" or "c.fsd" or "c.swsp" or "c.sdsp" or "c.fsdsp"
                || mnemonic.StartsWith("amo", StringComparison.Ordinal) || mnemonic.StartsWith("sc.", StringComparison.Ordinal);
        }

        if (label == "fcsr")
        {
            return mnemonic.StartsWith('f') || mnemonic.StartsWith("csr", StringComparison.Ordinal);
        }

        bool isStore = mnemonic is "sb" or "sh" or "sw" or "sd" or "fsw" or "fsd" or "c.sw" or "c.sd" or "c.fsd" or "c.swsp" or "c.sdsp" or "c.fsdsp";
        if (isStore || mnemonic.StartsWith('b') || mnemonic is "c.j" or "c.jr" or "c.beqz" or "c.bnez")
        {
            return false;
        }

        if (mnemonic is "c.jalr")
        {
            return label == "x1";
        }

        if (mnemonic is "c.addi16sp")
        {
            return label == "x2";
        }

        return ops.Length > 0 && ops[0] == label;
    }
}
