// `tern run --snapshot-on-exit` and `--restore` as a user meets them.
using Tern.Tests.Shared;

namespace Tern.Cli.Tests;

public sealed class SnapshotCliTests : IDisposable
{
    private const ulong Ram = 0x8000_0000;
    private readonly string _dir = Directory.CreateTempSubdirectory("tern-snapcli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Saves_on_exit_restores_and_refuses_a_broken_snapshot()
    {
        // Prints "A", then "B", then powers off.
        string elf = Path.Combine(_dir, "ab.elf");
        File.WriteAllBytes(elf, ElfBuilder.Build(Ram, ElfBuilder.Words(
            Enc.Lui(5, 0x10000), Enc.Addi(6, 0, 'A'), Enc.Sb(5, 6, 0), Enc.Addi(6, 0, 'B'), Enc.Sb(5, 6, 0),
            Enc.Lui(5, 0x100), Enc.Lui(6, 5), Enc.Addi(6, 6, 0x555), Enc.Sw(5, 6, 0), Enc.Jal(0, 0)), Ram));
        string snap = Path.Combine(_dir, "ab.snap");
        var err = new StringWriter();

        int code = TernApp.Invoke(["run", "--kernel", elf, "--clock", "icount", "--max-instructions", "3", "--snapshot-on-exit", snap], TextWriter.Null, err);
        Assert.Equal(124, code); // stopped by the instruction limit, as asked
        Assert.True(File.Exists(snap));

        Assert.Equal(0, TernApp.Invoke(["run", "--restore", snap], TextWriter.Null, err));

        File.WriteAllBytes(snap, [1, 2, 3]);
        Assert.Equal(2, TernApp.Invoke(["run", "--restore", snap], TextWriter.Null, err));
        Assert.Contains("bad magic", err.ToString(), StringComparison.Ordinal);

        err = new StringWriter();
        Assert.Equal(2, TernApp.Invoke(["run", "--restore", snap, "--kernel", elf], TextWriter.Null, err));
        Assert.Contains("either --kernel", err.ToString(), StringComparison.Ordinal);
    }
}
