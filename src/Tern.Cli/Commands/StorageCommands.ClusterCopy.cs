// `tern lv copy FILE lv:VG/LV` (import) and `tern lv copy lv:VG/LV FILE` (export) against a
// cluster: the file is on this machine, the LV wherever the cluster keeps its extents, so the
// data goes through the node's API in chunks (GET/PUT /api/storage/lvs/{vg}/{lv}/data, see
// Tern.Node's StorageDataApi), with the same offsets, progress bar, output line and one-line
// errors as a copy on one node. Each chunk written is flushed before the next is sent.
using System.CommandLine;
using System.Diagnostics;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;

namespace Tern.Cli.Commands;

public static partial class StorageCommands
{
    private const int ApiChunk = 4 << 20; // StorageDataApi.MaxChunk

    private static async Task<int> CopyThroughApiAsync(ParseResult parse, string api, string? token, string from, string to, string? skip, string? seek, string? count, CancellationToken ct)
    {
        var err = parse.InvocationConfiguration.Error;
        bool import = to.StartsWith("lv:", StringComparison.Ordinal);
        string lvSpec = import ? to : from;
        using var http = new HttpClient { BaseAddress = new Uri(api), Timeout = TimeSpan.FromMinutes(5) };
        if (token is { Length: > 0 })
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        string? route = null;
        try
        {
            var (vg, lv) = ParseLvName(lvSpec[3..]);
            route = $"/api/storage/lvs/{Uri.EscapeDataString(vg)}/{Uri.EscapeDataString(lv)}/data";
            long skipBytes = skip is { } sk ? ParseOffset(sk, "--skip") : 0;
            long seekBytes = seek is { } se ? ParseOffset(se, "--seek") : 0;
            long? countBytes = count is { } c ? ParseOffset(c, "--count") : null;
            if (import && !File.Exists(from))
                throw new Tern.Storage.StorageException($"{from} does not exist");
            long lvSize = await LvSizeAsync(http, route, ct).ConfigureAwait(false);
            using var file = import ? new FileDevice(from, forWrite: false, 0) : null;
            long length = (import ? file!.Length : lvSize) - skipBytes;
            if (length < 0)
                throw new Tern.Storage.StorageException($"--skip {skipBytes} is past the end of {from} ({(import ? file!.Length : lvSize)} bytes)");
            if (countBytes is { } limit)
                length = Math.Min(length, limit);
            if (import && seekBytes + length > lvSize)
                throw new Tern.Storage.StorageException($"{from} has {length} bytes to copy, more than {to} holds from offset {seekBytes} ({lvSize - seekBytes} bytes)");
            using var target = import ? null : new FileDevice(to, forWrite: true, seekBytes + length);
            var bar = ProgressBar.For(parse, "copy", length);
            var sw = Stopwatch.StartNew();
            var buffer = new byte[ApiChunk];
            for (long done = 0; done < length;)
            {
                int n = (int)Math.Min(buffer.Length, length - done);
                if (import)
                {
                    await file!.ReadAsync(skipBytes + done, buffer.AsMemory(0, n), ct).ConfigureAwait(false);
                    using var body = new ByteArrayContent(buffer, 0, n);
                    body.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
                    using var put = await http.PutAsync($"{route}?offset={seekBytes + done}", body, ct).ConfigureAwait(false);
                    await ThrowIfFailedAsync(put, ct).ConfigureAwait(false);
                }
                else
                {
                    using var get = await http.GetAsync($"{route}?offset={skipBytes + done}&length={n}", ct).ConfigureAwait(false);
                    await ThrowIfFailedAsync(get, ct).ConfigureAwait(false);
                    var data = await get.Content.ReadAsByteArrayAsync(ct).ConfigureAwait(false);
                    if (data.Length != n)
                        throw new IOException($"the cluster sent {data.Length} bytes of {lvSpec} at offset {skipBytes + done}, not {n}");
                    await target!.WriteAsync(seekBytes + done, data, ct).ConfigureAwait(false);
                }
                done += n;
                bar?.Report(done);
            }
            if (target is not null)
                await target.FlushAsync(ct).ConfigureAwait(false);
            bar?.Done();
            double secs = Math.Max(sw.Elapsed.TotalSeconds, 1e-6);
            parse.InvocationConfiguration.Output.WriteLine($"{length} bytes ({FormatSize(length)}) copied, {secs:F3} s, {length / secs / (1 << 20):F1} MiB/s");
            return 0;
        }
        catch (Tern.Storage.StorageException e)
        {
            err.WriteLine($"tern lv copy: {e.Message}");
            return UsageError;
        }
        catch (HttpRequestException e)
        {
            err.WriteLine($"tern lv copy: cannot reach the cluster at {api}: {e.Message}");
            return IoError;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            err.WriteLine($"tern lv copy: {e.Message}");
            return IoError;
        }
        finally
        {
            // The node keeps the LV open between chunks; give it back at once (a guest may want it).
            if (route is not null)
            {
                try
                {
                    using var close = await http.DeleteAsync(route, CancellationToken.None).ConfigureAwait(false);
                }
                catch (HttpRequestException)
                {
                    // the node closes it after 10 s without a request anyway
                }
            }
        }
    }

    private static async Task<long> LvSizeAsync(HttpClient http, string route, CancellationToken ct)
    {
        using var answer = await http.GetAsync($"{route}?offset=0&length=0", ct).ConfigureAwait(false);
        await ThrowIfFailedAsync(answer, ct).ConfigureAwait(false);
        return answer.Headers.TryGetValues("X-Tern-Lv-Size", out var values) && long.TryParse(values.First(), System.Globalization.CultureInfo.InvariantCulture, out long size)
            ? size
            : throw new IOException("the cluster did not say how large the logical volume is");
    }

    // A refusal (4xx) is a usage error, the rest an I/O error; both carry the node's one line.
    private static async Task ThrowIfFailedAsync(HttpResponseMessage answer, CancellationToken ct)
    {
        if (answer.IsSuccessStatusCode)
            return;
        string reason = $"{(int)answer.StatusCode} {answer.ReasonPhrase}";
        try
        {
            var body = await answer.Content.ReadFromJsonAsync<JsonElement>(ct).ConfigureAwait(false);
            if (body.ValueKind == JsonValueKind.Object && body.TryGetProperty("error", out var e) && e.GetString() is { Length: > 0 } text)
                reason = text;
        }
        catch (JsonException)
        {
            // no JSON body: the status says it
        }
        if ((int)answer.StatusCode is >= 400 and < 500)
            throw new Tern.Storage.StorageException(reason);
        throw new IOException(reason);
    }
}
