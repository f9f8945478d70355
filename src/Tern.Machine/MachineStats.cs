// Trap-and-emulate made visible, in the manner of kvm_stat: what the guest made the
// hypervisor do, by reason. Counters live in the machine state so the cluster can export them.
using System.Globalization;
using System.Text;
using Tern.Riscv;

namespace Tern.Machine;

/// <summary>Per-VM exit and trap counters.</summary>
public sealed class MachineStats
{
    private readonly long[] _exceptions = new long[16];
    private readonly long[] _interrupts = new long[16];
    private readonly Dictionary<string, long> _mmio = new(StringComparer.Ordinal);

    /// <summary>WFI halts that put a hart to sleep.</summary>
    public long WfiHalts { get; internal set; }

    /// <summary>Exceptions taken, by cause (8, 9 and 11 are ECALLs: system calls and SBI hypercalls).</summary>
    public IReadOnlyList<long> Exceptions => _exceptions;

    /// <summary>Interrupts taken, by cause.</summary>
    public IReadOnlyList<long> Interrupts => _interrupts;

    /// <summary>MMIO accesses, by device.</summary>
    public IReadOnlyDictionary<string, long> Mmio => _mmio;

    internal void Trap(ulong cause)
    {
        bool interrupt = (cause & Cause.InterruptBit) != 0;
        int code = (int)(cause & 15);
        (interrupt ? _interrupts : _exceptions)[code]++;
    }

    internal void MmioAccess(string device) => _mmio[device] = _mmio.GetValueOrDefault(device) + 1;

    private static readonly string[] ExceptionNames =
    [
        "instruction misaligned", "instruction access fault", "illegal instruction", "breakpoint",
        "load misaligned", "load access fault", "store misaligned", "store access fault",
        "ecall from U (syscall)", "ecall from S (SBI call)", "reserved 10", "ecall from M",
        "instruction page fault", "load page fault", "reserved 14", "store page fault",
    ];

    private static readonly string[] InterruptNames =
    [
        "0", "supervisor software", "2", "machine software (IPI)", "4", "supervisor timer", "6", "machine timer",
        "8", "supervisor external", "10", "machine external", "12", "13", "14", "15",
    ];

    /// <summary>A kvm_stat-like table of every non-zero counter.</summary>
    public string Format()
    {
        var sb = new StringBuilder();
        sb.AppendLine("exits and traps                    count");
        for (int i = 0; i < 16; i++)
        {
            if (_exceptions[i] != 0)
                sb.AppendLine(CultureInfo.InvariantCulture, $"  exception: {ExceptionNames[i],-24}{_exceptions[i],10}");
        }
        for (int i = 0; i < 16; i++)
        {
            if (_interrupts[i] != 0)
                sb.AppendLine(CultureInfo.InvariantCulture, $"  interrupt: {InterruptNames[i],-24}{_interrupts[i],10}");
        }
        foreach (var (device, count) in _mmio.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            sb.AppendLine(CultureInfo.InvariantCulture, $"  mmio: {device,-29}{count,10}");
        sb.AppendLine(CultureInfo.InvariantCulture, $"  wfi halts{"",-26}{WfiHalts,10}");
        return sb.ToString();
    }

    /// <summary>Captures the counters.</summary>
    public MachineStatsState Save() => new((long[])_exceptions.Clone(), (long[])_interrupts.Clone(), new Dictionary<string, long>(_mmio, StringComparer.Ordinal), WfiHalts);

    /// <summary>Restores counters captured by <see cref="Save"/>.</summary>
    public void Restore(MachineStatsState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Exceptions.Length != 16 || state.Interrupts.Length != 16)
            throw new ArgumentException("statistics state has the wrong shape", nameof(state));
        state.Exceptions.CopyTo(_exceptions, 0);
        state.Interrupts.CopyTo(_interrupts, 0);
        _mmio.Clear();
        foreach (var (k, v) in state.Mmio)
            _mmio[k] = v;
        WfiHalts = state.WfiHalts;
    }
}

/// <summary>Saved statistics. Version 1.</summary>
public sealed record MachineStatsState(long[] Exceptions, long[] Interrupts, Dictionary<string, long> Mmio, long WfiHalts);
