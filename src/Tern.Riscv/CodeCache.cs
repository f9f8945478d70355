// Predecoded instructions, per physical page of guest RAM. A page's blocks are dropped when
// the page is written (GuestMemory reports it), so stale code never runs after a store
// followed by fence.i, and self-modifying guests stay correct.
namespace Tern.Riscv;

/// <summary>A straight-line run of predecoded instructions ending at a control transfer, a page end or a length cap.</summary>
internal sealed class Block
{
    public Block(Insn[] insns, int endOffset)
    {
        Insns = insns;
        EndOffset = endOffset;
    }

    /// <summary>The instructions, in order.</summary>
    public Insn[] Insns { get; }

    /// <summary>Byte offset just past the last instruction.</summary>
    public int EndOffset { get; }

    /// <summary>Set when the page was written: the block must not be entered again.</summary>
    public bool Dead;

    // Two remembered successors (a branch's taken and fall-through targets), each valid only
    // for the translation epoch of the hart that linked it: epochs are unique across harts.
    public Block? Next0, Next1;
    public ulong Pc0, Pc1;
    public long Epoch0, Epoch1;

    public Block? Successor(ulong pc, long epoch)
    {
        if (Pc0 == pc && Epoch0 == epoch && Next0 is { Dead: false } a)
            return a;
        if (Pc1 == pc && Epoch1 == epoch && Next1 is { Dead: false } b)
            return b;
        return null;
    }

    public void Link(ulong pc, long epoch, Block next)
    {
        if (Epoch0 != epoch || Next0 is null || Next0.Dead)
        {
            Next0 = next; Pc0 = pc; Epoch0 = epoch;
        }
        else
        {
            Next1 = next; Pc1 = pc; Epoch1 = epoch;
        }
    }
}

/// <summary>Blocks indexed by physical page and halfword offset, shared by all harts of a machine.</summary>
internal sealed class CodeCache
{
    private readonly Block?[]?[] _pages;

    // Per page, one bit per 64-byte chunk that holds predecoded instructions: a store that
    // misses every such chunk (data sharing a page with code) leaves the blocks alone.
    private readonly ulong[] _chunks;

    public CodeCache(int pageCount)
    {
        _pages = new Block?[]?[pageCount];
        _chunks = new ulong[pageCount];
    }

    /// <summary>True when [offset, offset+length) of the page overlaps predecoded code.</summary>
    public bool Overlaps(int page, int offset, int length) => (_chunks[page] & ChunkMask(offset, length)) != 0;

    private static ulong ChunkMask(int offset, int length)
    {
        int first = offset >> 6, last = (offset + length - 1) >> 6;
        ulong upTo = last >= 63 ? ulong.MaxValue : (2UL << last) - 1;
        return upTo & ~((1UL << first) - 1);
    }

    public Block? Lookup(int page, int offset) => _pages[page]?[offset >> 1];

    public void Insert(int page, int offset, Block block)
    {
        var blocks = _pages[page] ??= new Block?[GuestMemory.PageSize / 2];
        blocks[offset >> 1] = block;
        _chunks[page] |= ChunkMask(offset, block.EndOffset);
    }

    /// <summary>Hands out translation epochs, unique across the harts sharing this cache.</summary>
    public long NewEpoch() => ++_epochs;

    private long _epochs;

    public void InvalidatePage(int page)
    {
        var blocks = _pages[page];
        if (blocks is null)
            return;
        foreach (var b in blocks)
        {
            if (b is not null)
                b.Dead = true;
        }
        _pages[page] = null;
        _chunks[page] = 0;
    }
}
