// A hart over 1 MiB of RAM at 0x80000000 and no devices, with helpers to place code.
using Tern.Riscv;

namespace Tern.Riscv.Tests.Cpu;

internal sealed class TestHart : IDisposable
{
    public const ulong RamBase = 0x8000_0000;

    public TestHart(ulong ramBytes = 1 << 20)
    {
        Memory = new GuestMemory(RamBase, ramBytes);
        Hart = new Hart(0, Memory, EmptyBus.Instance) { Pc = RamBase };
    }

    public GuestMemory Memory { get; }

    public Hart Hart { get; }

    public void Code(ulong address, params uint[] words)
    {
        var bytes = new byte[words.Length * 4];
        for (int i = 0; i < words.Length; i++)
            BitConverter.TryWriteBytes(bytes.AsSpan(i * 4), words[i]);
        Memory.Write(address, bytes);
    }

    public void Dispose()
    {
        Hart.Dispose();
        Memory.Dispose();
    }
}
