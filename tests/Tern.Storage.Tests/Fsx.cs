// An fsx-style verifying workload: random writes of known patterns at random offsets and
// lengths, reads that check them against a flat model, and occasional flushes. Seeded, so a
// failure names the step that reproduces it.
namespace Tern.Storage.Tests;

internal sealed class Fsx(IBlockDevice device, int seed)
{
    private readonly Random _rng = new(seed);
    private IBlockDevice _device = device;
    private byte[] _model = new byte[device.Length];

    /// <summary>The expected contents now (a copy).</summary>
    public byte[] Model => (byte[])_model.Clone();

    /// <summary>Goes on through another handle of the same volume (reopened after its first snapshot).</summary>
    public void Reopened(IBlockDevice reopened) => _device = reopened;

    public int Steps { get; private set; }

    /// <summary>Takes in a size change made by someone else (grow: zeros appear; shrink: the tail goes).</summary>
    public void Resized()
    {
        var m = new byte[_device.Length];
        Array.Copy(_model, m, Math.Min(m.Length, _model.Length));
        _model = m;
    }

    public async Task RunAsync(int steps, int maxLength = 96 << 10)
    {
        for (int i = 0; i < steps; i++, Steps++)
        {
            long size = Math.Min(_model.Length, _device.Length);
            int kind = _rng.Next(10);
            long off = _rng.NextInt64(0, size);
            int len = (int)Math.Min(size - off, _rng.Next(1, maxLength));
            if (_rng.Next(3) == 0)
            {
                off = off / 4096 * 4096; // aligned requests are the common case
                len = (int)Math.Min(size - off, Math.Max(4096, len / 4096 * 4096));
            }
            if (kind < 5)
            {
                var data = new byte[len];
                _rng.NextBytes(data);
                await _device.WriteAsync(off, data);
                data.CopyTo(_model, off);
            }
            else if (kind < 9)
            {
                var back = new byte[len];
                await _device.ReadAsync(off, back);
                if (!_model.AsSpan((int)off, len).SequenceEqual(back))
                {
                    int at = 0;
                    while (_model[off + at] == back[at])
                        at++;
                    throw new InvalidDataException($"fsx seed {seed} step {Steps}: read {off}+{len} differs at {off + at}");
                }
            }
            else
            {
                await _device.FlushAsync();
            }
        }
    }

    /// <summary>Reads the whole device (or the same volume reopened as <paramref name="reopened"/>) and compares it with the model.</summary>
    public async Task VerifyAllAsync(IBlockDevice? reopened = null)
    {
        var dev = reopened ?? _device;
        var back = new byte[dev.Length];
        await dev.ReadAsync(0, back);
        Assert.True(_model.AsSpan().SequenceEqual(back), $"fsx seed {seed}: final contents differ");
    }
}
