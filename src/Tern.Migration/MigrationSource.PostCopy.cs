// Post-copy on the source: after the switchover the guest runs on the target with the pages
// it dirtied last still here. The source answers the target's requests for pages the guest
// touched first and pushes the rest in the background, then says finished; its (paused)
// copy of the guest keeps the pages until the target says it has them all.
using System.Buffers.Binary;
using Tern.Riscv;

namespace Tern.Migration;

public sealed partial class MigrationSource
{
    private const int PostCopyBatch = 32;
    private long _postCopyRequested;
    private bool _postCopyStarted;
    private bool _noDelta;

    private async Task ServePostCopy(Stream channel, GuestMemory memory, List<int> missing, CancellationToken ct)
    {
        _postCopyStarted = true;
        _noDelta = true; // the target stores pushed pages whole: it may have fetched one since
        var pending = new bool[memory.PageCount];
        foreach (int p in missing)
            pending[p] = true;
        var requests = System.Threading.Channels.Channel.CreateUnbounded<int>();
        var wake = new SemaphoreSlim(0);
        var reader = Task.Run(async () =>
        {
            try
            {
                while (true)
                {
                    var (type, payload) = await MigrationWire.ReadAsync(channel, ct).ConfigureAwait(false);
                    if (type == MigrationWire.Finished)
                        return;
                    if (type != MigrationWire.Request || payload.Length != 4)
                        throw Unexpected(type, payload, "during post-copy");
                    requests.Writer.TryWrite((int)BinaryPrimitives.ReadUInt32LittleEndian(payload));
                    wake.Release();
                }
            }
            finally
            {
                wake.Release();
            }
        }, ct);
        var batch = new List<int>(PostCopyBatch);
        int next = 0;
        while (true)
        {
            if (reader.IsFaulted || reader.IsCanceled)
                await reader.ConfigureAwait(false);
            while (requests.Reader.TryRead(out int page))
            {
                if ((uint)page < (uint)pending.Length && pending[page])
                {
                    pending[page] = false;
                    batch.Add(page);
                    _postCopyRequested++;
                }
            }
            bool pushed = batch.Count == 0;
            if (pushed)
            {
                while (next < missing.Count && batch.Count < PostCopyBatch)
                {
                    int page = missing[next++];
                    if (pending[page])
                    {
                        pending[page] = false;
                        batch.Add(page);
                    }
                }
            }
            if (batch.Count == 0)
                break;
            for (int done = 0; done < batch.Count;)
            {
                done = EncodeRecord(memory, batch, done, batch.Count);
                await MigrationWire.WriteAsync(channel, MigrationWire.Pages, _record.WrittenMemory, ct).ConfigureAwait(false);
                await channel.FlushAsync(ct).ConfigureAwait(false);
                _bytes += _record.WrittenCount + 9;
                if (pushed)
                    await Pace(_record.WrittenCount + 9, ct).ConfigureAwait(false); // requested pages go at once
            }
            batch.Clear();
        }
        await MigrationWire.WriteAsync(channel, MigrationWire.Finished, Array.Empty<byte>(), ct).ConfigureAwait(false);
        await channel.FlushAsync(ct).ConfigureAwait(false);
        await reader.WaitAsync(_options.AckTimeout, ct).ConfigureAwait(false);
    }
}
