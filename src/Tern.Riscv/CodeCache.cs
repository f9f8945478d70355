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
}

/// <summary>Blocks indexed by physical page and halfword offset, shared by all harts of a machine.</summary>
internal sealed class CodeCache
{
    private readonly Block?[]?[] _pages;

    public CodeCache(int pageCount) => _pages = new Block?[]?[pageCount];

    public Block? Lookup(int page, int offset) => _pages[page]?[offset >> 1];

    public void Insert(int page, int offset, Block block)
    {
        var blocks = _pages[page] ??= new Block?[GuestMemory.PageSize / 2];
        blocks[offset >> 1] = block;
    }

    public void InvalidatePage(int page) => _pages[page] = null;

    public void Clear() => Array.Clear(_pages);
}
