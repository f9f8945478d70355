// Post-copy migration's absent pages: a hart (or a device) touching a page still on the
// migration source asks for it and waits; a page that arrives after the guest fetched it is
// not stored over the guest's writes; a source that is gone stops the guest with an error.
using Tern.Tests.Shared;

namespace Tern.Riscv.Tests.Cpu;

public sealed class PostCopyMemoryTests
{
    private const int Page = 16; // 0x8001_0000
    private const ulong Address = TestHart.RamBase + ((ulong)Page << 12);

    private static void MarkAbsent(GuestMemory memory, params int[] pages)
    {
        var bits = new ulong[memory.DirtyWords];
        foreach (int p in pages)
            bits[p >> 6] |= 1UL << (p & 63);
        memory.MarkAbsent(bits);
    }

    private static byte[] PageOf(ulong word)
    {
        var page = new byte[GuestMemory.PageSize];
        BitConverter.TryWriteBytes(page, word);
        return page;
    }

    [Fact]
    public void A_load_from_an_absent_page_asks_for_it_and_sees_what_arrives()
    {
        using var t = new TestHart();
        t.Code(TestHart.RamBase, Enc.Auipc(5, 0x10), Enc.Ld(6, 5, 0));
        t.Memory.Write(Address, BitConverter.GetBytes(0xDEADUL)); // the stale copy of round 0
        MarkAbsent(t.Memory, Page);
        var asked = new List<int>();
        t.Memory.PageRequested = p =>
        {
            asked.Add(p);
            Task.Run(() => t.Memory.FillAbsent(p, PageOf(0x1234))); // from another thread, as the receiver does
        };
        t.Hart.Run(2);
        Assert.Equal(0x1234UL, t.Hart.GetX(6));
        Assert.Equal([Page], asked);
        Assert.Equal(0, t.Memory.AbsentPages);
        Assert.False(t.Memory.IsAbsent(Page));
    }

    [Fact]
    public void A_page_that_arrives_after_the_guest_wrote_it_does_not_overwrite_the_write()
    {
        using var t = new TestHart();
        t.Code(TestHart.RamBase, Enc.Auipc(5, 0x10), Enc.Addi(6, 0, 77), Enc.Sd(5, 6, 8));
        MarkAbsent(t.Memory, Page, Page + 1);
        t.Memory.PageRequested = p => t.Memory.FillAbsent(p, PageOf(5));
        t.Hart.Run(3);
        Assert.Equal(1, t.Memory.AbsentPages);
        Assert.False(t.Memory.FillAbsent(Page, PageOf(9))); // the background pass's late copy
        var bytes = new byte[16];
        t.Memory.Read(Address, bytes);
        Assert.Equal(5UL, BitConverter.ToUInt64(bytes, 0));
        Assert.Equal(77UL, BitConverter.ToUInt64(bytes, 8));
        Assert.True(t.Memory.FillAbsent(Page + 1, PageOf(3)));
        Assert.Equal(0, t.Memory.AbsentPages);
    }

    [Fact]
    public void A_device_touching_an_absent_page_waits_for_it_too()
    {
        using var t = new TestHart();
        MarkAbsent(t.Memory, Page);
        t.Memory.PageRequested = p => t.Memory.FillAbsent(p, PageOf(0xABCD));
        Assert.Equal(0xABCDUL, BitConverter.ToUInt64(t.Memory.Span(Address, 8)));
    }

    [Fact]
    public void When_the_source_is_gone_touching_an_absent_page_fails_instead_of_running_on_stale_memory()
    {
        using var t = new TestHart();
        t.Code(TestHart.RamBase, Enc.Auipc(5, 0x10), Enc.Ld(6, 5, 0));
        MarkAbsent(t.Memory, Page);
        t.Memory.PageRequested = _ => t.Memory.FailAbsent("connection reset");
        var e = Assert.Throws<PageUnavailableException>(() => t.Hart.Run(2));
        Assert.Contains("connection reset", e.Message, StringComparison.Ordinal);
        Assert.True(t.Memory.IsAbsent(Page));
    }

    [Fact]
    public void A_bitmap_of_the_wrong_size_is_refused_and_changes_nothing()
    {
        using var t = new TestHart();
        Assert.Throws<ArgumentException>(() => t.Memory.MarkAbsent(new ulong[t.Memory.DirtyWords + 1]));
        Assert.Equal(0, t.Memory.AbsentPages);
        Assert.Throws<ArgumentException>(() => t.Memory.FillAbsent(Page, new byte[100]));
    }
}
