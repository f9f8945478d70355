// How `tern bench storage` turns its timed blocks into the checksum-cost figure: the median and
// quartiles of the per-block costs, so that one block disturbed by the machine's load moves it
// little.
namespace Tern.Storage.Tests;

public sealed class ChecksumCostFigureTests
{
    [Fact]
    public void The_figure_is_the_median_with_interpolated_quartiles_in_any_order()
    {
        var c = StorageBenchmark.Summarize("seq-read-1M", [5, 1, 3, 2, 4]);
        Assert.Equal(("seq-read-1M", 3.0, 2.0, 4.0, 5), (c.Workload, c.Percent, c.LowPercent, c.HighPercent, c.Blocks));
        var even = StorageBenchmark.Summarize("rand-read-4K", [8, 2, 6, 4]);
        Assert.Equal(5.0, even.Percent, 9);
        Assert.Equal(3.5, even.LowPercent, 9);
        Assert.Equal(6.5, even.HighPercent, 9);
    }

    [Fact]
    public void One_block_hit_by_a_burst_of_load_barely_moves_the_figure()
    {
        double[] blocks = [4.1, 3.9, 4.4, 3.6, 4.0, 4.2, 3.8, 4.3, 3.7, 4.0, 4.1, 3.9, 4.0, 4.2, 3.8, 4.0];
        double quiet = StorageBenchmark.Summarize("seq-read-1M", blocks).Percent;
        blocks[5] = 95; // one block ran while something else took the second core
        double disturbed = StorageBenchmark.Summarize("seq-read-1M", blocks).Percent;
        Assert.InRange(disturbed - quiet, 0, 0.1);
        Assert.True(blocks.Average() - quiet > 5, "a mean would have moved by more than 5 points");
    }
}
