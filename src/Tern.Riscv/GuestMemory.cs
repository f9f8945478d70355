// Guest RAM: one contiguous host allocation, a dirty bitmap (one bit per 4 KiB page) and a
// byte of flags per page. The flags let the CPU keep stores on its fast path except where
// something must see them: pages holding predecoded code, and watched pages (HTIF tohost).
using System.Runtime.InteropServices;

namespace Tern.Riscv;

/// <summary>A post-copy page could not be fetched: the guest cannot continue.</summary>
public sealed class PageUnavailableException(string message) : Exception(message);

/// <summary>Guest physical RAM with dirty-page logging.</summary>
public sealed unsafe class GuestMemory : IDisposable
{
    /// <summary>Size of a guest page in bytes.</summary>
    public const int PageSize = 4096;

    /// <summary>log2 of <see cref="PageSize"/>.</summary>
    public const int PageShift = 12;

    internal const byte FlagCode = 1;
    internal const byte FlagWatch = 2;

    private readonly ulong[] _dirty;
    private readonly byte[] _flags;
    private byte* _host;

    // Post-copy: a bit per page still on the migration source (null when every page is here,
    // so the checks on the slow paths cost one field test).
    private volatile ulong[]? _absent;
    private readonly object _arrivals = new();
    private int _absentCount;
    private string? _absentFailure;

    /// <summary>Allocates zeroed RAM of <paramref name="size"/> bytes at guest physical <paramref name="baseAddress"/>.</summary>
    public GuestMemory(ulong baseAddress, ulong size)
    {
        if (size == 0 || size % PageSize != 0)
            throw new ArgumentOutOfRangeException(nameof(size), size, "RAM size must be a non-zero multiple of 4 KiB.");
        if (baseAddress % PageSize != 0)
            throw new ArgumentOutOfRangeException(nameof(baseAddress), baseAddress, "RAM base must be page aligned.");
        Base = baseAddress;
        Size = size;
        // calloc: fresh pages come zeroed from the OS and are only touched when the guest uses
        // them, so a large guest costs nothing until it writes its memory.
        _host = (byte*)NativeMemory.AllocZeroed((nuint)size);
        PageCount = (int)(size / PageSize);
        _dirty = new ulong[(PageCount + 63) / 64];
        _flags = new byte[PageCount];
    }

    /// <summary>Guest physical address of the first byte of RAM.</summary>
    public ulong Base { get; }

    /// <summary>RAM size in bytes.</summary>
    public ulong Size { get; }

    /// <summary>Number of 4 KiB pages.</summary>
    public int PageCount { get; }

    /// <summary>Host pointer to the first byte of RAM. Valid until disposed.</summary>
    public byte* Host => _host;

    /// <summary>Called after a CPU store lands in a watched page, with the physical address and size.</summary>
    public Action<ulong, int>? WatchedWrite { get; set; }

    /// <summary>Raised when a page starts holding predecoded code, so harts drop fast-path write mappings of it.</summary>
    internal event Action<int>? CodePageRegistered;

    /// <summary>Raised when harts must drop all fast-path write mappings (after a dirty-log harvest).</summary>
    internal event Action? WriteMappingsRevoked;

    /// <summary>True when [address, address+length) lies entirely inside RAM.</summary>
    public bool Contains(ulong address, ulong length) =>
        address >= Base && length <= Size && address - Base <= Size - length;

    /// <summary>RAM as a span at a guest physical address. Throws when the range is outside RAM.</summary>
    public Span<byte> Span(ulong address, int length)
    {
        if (length < 0 || !Contains(address, (ulong)length))
            throw new ArgumentOutOfRangeException(nameof(address), $"0x{address:x} + {length} is outside guest RAM.");
        if (_absent is not null && length > 0)
        {
            for (ulong p = (address - Base) >> PageShift; p <= (address - Base + (ulong)length - 1) >> PageShift; p++)
                EnsurePresent((int)p);
        }
        return new Span<byte>(_host + (address - Base), length);
    }

    /// <summary>
    /// Post-copy: asks for a page that is still on the migration source, on the thread that
    /// touched it (a vCPU or a device); the page then arrives through <see cref="FillAbsent"/>.
    /// </summary>
    public Action<int>? PageRequested { get; set; }

    /// <summary>Pages still on the migration source (post-copy), 0 otherwise.</summary>
    public int AbsentPages => Volatile.Read(ref _absentCount);

    /// <summary>
    /// Post-copy: marks the pages set in <paramref name="bits"/> as absent (their content is still
    /// on the source). Call before the guest runs. Touching one then blocks until it has arrived.
    /// </summary>
    public void MarkAbsent(ReadOnlySpan<ulong> bits)
    {
        if (bits.Length != _dirty.Length)
            throw new ArgumentException($"Bitmap needs {_dirty.Length} words.", nameof(bits));
        var absent = bits.ToArray();
        int count = 0;
        foreach (ulong w in absent)
            count += System.Numerics.BitOperations.PopCount(w);
        _absentFailure = null;
        _absentCount = count;
        _absent = count == 0 ? null : absent;
    }

    /// <summary>True when page <paramref name="page"/> is still on the migration source.</summary>
    public bool IsAbsent(int page) => _absent is { } a && (Volatile.Read(ref a[page >> 6]) & (1UL << (page & 63))) != 0;

    /// <summary>
    /// Post-copy: stores the content of an absent page and wakes whoever waits for it. A page
    /// that is already here (fetched on demand earlier) is left alone, since the guest may have
    /// written it since; returns whether the page was stored.
    /// </summary>
    public bool FillAbsent(int page, ReadOnlySpan<byte> content)
    {
        if (content.Length != PageSize)
            throw new ArgumentException($"a page is {PageSize} bytes", nameof(content));
        lock (_arrivals)
        {
            if (!IsAbsent(page))
                return false;
            content.CopyTo(new Span<byte>(_host + ((long)page << PageShift), PageSize));
            if ((_flags[page] & FlagCode) != 0)
                InvalidateCode(page);
            Interlocked.And(ref _absent![page >> 6], ~(1UL << (page & 63)));
            MarkDirty(page);
            if (--_absentCount == 0)
                _absent = null;
            Monitor.PulseAll(_arrivals);
            return true;
        }
    }

    /// <summary>Post-copy broke: whoever waits for an absent page (now or later) gets an exception with <paramref name="reason"/>.</summary>
    public void FailAbsent(string reason)
    {
        lock (_arrivals)
        {
            _absentFailure = reason;
            Monitor.PulseAll(_arrivals);
        }
    }

    /// <summary>Blocks until page <paramref name="page"/> is here (post-copy); returns at once otherwise.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    internal void EnsurePresent(int page)
    {
        if (_absent is not null)
            WaitForPage(page);
    }

    private void WaitForPage(int page)
    {
        if (!IsAbsent(page))
            return;
        PageRequested?.Invoke(page);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        lock (_arrivals)
        {
            while (IsAbsent(page))
            {
                if (_absentFailure is { } failure)
                    throw new PageUnavailableException($"guest page {page} is still on the migration source, which is gone: {failure}");
                if (DateTime.UtcNow > deadline)
                    throw new PageUnavailableException($"guest page {page} did not arrive from the migration source within 60 s");
                Monitor.Wait(_arrivals, 100);
            }
        }
    }

    /// <summary>Copies bytes into RAM as a device (DMA) or a loader would: marks pages dirty and drops stale code.</summary>
    public void Write(ulong address, ReadOnlySpan<byte> data)
    {
        data.CopyTo(Span(address, data.Length));
        NoteWritten(address, (ulong)data.Length);
    }

    /// <summary>Copies bytes out of RAM.</summary>
    public void Read(ulong address, Span<byte> destination) => Span(address, destination.Length).CopyTo(destination);

    /// <summary>Marks pages dirty and invalidates predecoded code after a write that bypassed the CPU.</summary>
    public void NoteWritten(ulong address, ulong length)
    {
        if (length == 0)
            return;
        int first = (int)((address - Base) >> PageShift);
        int last = (int)((address - Base + length - 1) >> PageShift);
        for (int p = first; p <= last; p++)
        {
            MarkDirty(p);
            if ((_flags[p] & FlagCode) != 0)
                InvalidateCode(p);
        }
    }

    /// <summary>Sets the dirty bit of page <paramref name="page"/>.</summary>
    public void MarkDirty(int page) => Interlocked.Or(ref _dirty[page >> 6], 1UL << (page & 63));

    /// <summary>Pages marked dirty now (without clearing them).</summary>
    public int CountDirty()
    {
        int n = 0;
        for (int i = 0; i < _dirty.Length; i++)
            n += System.Numerics.BitOperations.PopCount(Volatile.Read(ref _dirty[i]));
        return n;
    }

    /// <summary>True when page <paramref name="page"/> is marked dirty.</summary>
    public bool IsDirty(int page) => (Volatile.Read(ref _dirty[page >> 6]) & (1UL << (page & 63))) != 0;

    /// <summary>
    /// Atomically moves the dirty bitmap into <paramref name="into"/> (one bit per page) and clears it.
    /// Must be called on the thread that runs the harts (or while they are paused), so that no
    /// hart keeps a fast-path write mapping that would skip the cleared bit.
    /// </summary>
    public void HarvestDirty(Span<ulong> into)
    {
        if (into.Length < _dirty.Length)
            throw new ArgumentException($"Bitmap needs {_dirty.Length} words.", nameof(into));
        for (int i = 0; i < _dirty.Length; i++)
            into[i] = Interlocked.Exchange(ref _dirty[i], 0);
        WriteMappingsRevoked?.Invoke();
    }

    /// <summary>Number of 64-bit words in a dirty bitmap for this RAM.</summary>
    public int DirtyWords => _dirty.Length;

    /// <summary>Marks page <paramref name="page"/> as watched: CPU stores to it report through <see cref="WatchedWrite"/>.</summary>
    public void Watch(ulong address)
    {
        if (!Contains(address, 1))
            throw new ArgumentOutOfRangeException(nameof(address), $"0x{address:x} is outside guest RAM.");
        int page = (int)((address - Base) >> PageShift);
        _flags[page] |= FlagWatch;
        CodePageRegistered?.Invoke(page);
    }

    internal byte Flags(int page) => _flags[page];

    internal void SetCodeFlag(int page)
    {
        if ((_flags[page] & FlagCode) != 0)
            return;
        _flags[page] |= FlagCode;
        CodePageRegistered?.Invoke(page);
    }

    internal CodeCache? Code { get; set; }

    internal void InvalidateCode(int page)
    {
        _flags[page] &= unchecked((byte)~FlagCode);
        Code?.InvalidatePage(page);
    }

    /// <summary>Frees the host allocation.</summary>
    public void Dispose()
    {
        if (_host != null)
        {
            NativeMemory.Free(_host);
            _host = null;
        }
    }
}
