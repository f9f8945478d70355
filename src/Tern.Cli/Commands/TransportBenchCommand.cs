// `tern bench transport`: which carries migration pages faster on loopback, Akka remoting with
// large batched messages or a dedicated TCP stream? Both move the same bytes in batches of the
// migration's record size: TCP as one stream of writes; Akka as byte[] messages between two
// ActorSystems (DotNetty transport, frame size raised to fit a batch), with flow control (at
// most a window of unacknowledged batches in flight), as bulk data through actors would need.
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Akka.Actor;
using Akka.Configuration;

namespace Tern.Cli.Commands;

/// <summary>The `tern bench transport` verb.</summary>
public static class TransportBenchCommand
{
    /// <summary>Adds `transport` to the `tern bench` command.</summary>
    public static Command WithTransportBench(Command bench)
    {
        ArgumentNullException.ThrowIfNull(bench);
        var mib = new Option<int>("--mib") { Description = "MiB to move per run (16-4096).", DefaultValueFactory = _ => 256 };
        var batch = new Option<int>("--batch-kib") { Description = "KiB per batch (64-8192); the migration sends 256 pages = 1 MiB per record.", DefaultValueFactory = _ => 1024 };
        var window = new Option<int>("--window") { Description = "Akka: batches in flight before waiting for an acknowledgement (1-64).", DefaultValueFactory = _ => 8 };
        var runs = new Option<int>("--runs") { Description = "Runs of each (best is reported).", DefaultValueFactory = _ => 3 };
        var command = new Command("transport", "Compare Akka remoting (batched byte[] messages) with a dedicated TCP stream on loopback, for migration pages.") { mib, batch, window, runs };
        command.SetAction(async (parse, ct) =>
        {
            var output = parse.InvocationConfiguration.Output;
            int total = parse.GetValue(mib), kib = parse.GetValue(batch), win = parse.GetValue(window), n = parse.GetValue(runs);
            if (total is < 16 or > 4096 || kib is < 64 or > 8192 || win is < 1 or > 64 || n is < 1 or > 10)
            {
                parse.InvocationConfiguration.Error.WriteLine("tern bench transport: --mib 16-4096, --batch-kib 64-8192, --window 1-64, --runs 1-10");
                return RunCommand.UsageError;
            }
            long bytes = (long)total << 20;
            int size = kib << 10;
            double tcp = 0, akka = 0;
            for (int i = 0; i < n; i++)
            {
                tcp = Math.Max(tcp, await Tcp(bytes, size, ct));
                akka = Math.Max(akka, await Akka(bytes, size, win, ct));
            }
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"moving {total} MiB in {kib} KiB batches on 127.0.0.1, best of {n}:"));
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  tcp stream          {tcp,8:0.0} MiB/s"));
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  akka remoting       {akka,8:0.0} MiB/s   (window {win})"));
            output.WriteLine(tcp >= akka ? $"  faster: tcp stream ({tcp / akka:0.0}x)" : $"  faster: akka remoting ({akka / tcp:0.0}x)");
            return 0;
        });
        bench.Subcommands.Add(command);
        return bench;
    }

    private static async Task<double> Tcp(long bytes, int size, CancellationToken ct)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var accept = listener.AcceptTcpClientAsync(ct).AsTask();
        using var client = new TcpClient { NoDelay = true };
        await client.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port, ct);
        using var server = await accept;
        var read = Task.Run(async () =>
        {
            var buffer = new byte[1 << 20];
            long got = 0;
            var stream = server.GetStream();
            while (got < bytes)
            {
                int r = await stream.ReadAsync(buffer, ct);
                if (r == 0)
                    throw new IOException("the stream ended early");
                got += r;
            }
        }, ct);
        var payload = Payload(size);
        var clock = Stopwatch.StartNew();
        var send = client.GetStream();
        for (long sent = 0; sent < bytes; sent += size)
            await send.WriteAsync(payload.AsMemory(0, (int)Math.Min(size, bytes - sent)), ct);
        await read.WaitAsync(TimeSpan.FromMinutes(2), ct);
        return bytes / (double)(1 << 20) / clock.Elapsed.TotalSeconds;
    }

    private static async Task<double> Akka(long bytes, int size, int window, CancellationToken ct)
    {
        string hocon = $$"""
            akka.loglevel = WARNING
            akka.actor.provider = remote
            akka.remote.dot-netty.tcp {
              hostname = 127.0.0.1
              port = 0
              maximum-frame-size = {{size + (256 << 10)}}b
              send-buffer-size = {{Math.Max(size * 4, 4 << 20)}}b
              receive-buffer-size = {{Math.Max(size * 4, 4 << 20)}}b
            }
            """;
        var config = ConfigurationFactory.ParseString(hocon);
        using var a = ActorSystem.Create("bench", config);
        using var b = ActorSystem.Create("bench", config);
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        b.ActorOf(Props.Create(() => new Sink(bytes, done)), "sink");
        var address = ((ExtendedActorSystem)b).Provider.DefaultAddress;
        var sink = await a.ActorSelection($"{address}/user/sink").ResolveOne(TimeSpan.FromSeconds(10), ct);
        // Warm the connection so that the association handshake is not timed.
        await sink.Ask<long>(new byte[16], TimeSpan.FromSeconds(10), ct);
        var clock = Stopwatch.StartNew();
        a.ActorOf(Props.Create(() => new Source(sink, bytes, size, window)), "source");
        await done.Task.WaitAsync(TimeSpan.FromMinutes(2), ct);
        double rate = bytes / (double)(1 << 20) / clock.Elapsed.TotalSeconds;
        await Task.WhenAll(a.Terminate(), b.Terminate());
        return rate;
    }

    private static byte[] Payload(int size)
    {
        var payload = new byte[size];
        new Random(7).NextBytes(payload); // incompressible, like raw pages
        return payload;
    }

    // Receives batches, acknowledges each with the bytes received so far.
    private sealed class Sink : ReceiveActor
    {
        public Sink(long expected, TaskCompletionSource done)
        {
            long got = 0;
            bool warmed = false;
            Receive<byte[]>(batch =>
            {
                if (!warmed)
                {
                    warmed = true;
                    Sender.Tell(0L);
                    return;
                }
                got += batch.Length;
                Sender.Tell(got);
                if (got >= expected)
                    done.TrySetResult();
            });
        }
    }

    // Sends batches with at most `window` unacknowledged.
    private sealed class Source : ReceiveActor
    {
        public Source(IActorRef sink, long bytes, int size, int window)
        {
            var payload = Payload(size);
            long sent = 0;
            int inFlight = 0;
            void Pump()
            {
                while (inFlight < window && sent < bytes)
                {
                    int n = (int)Math.Min(size, bytes - sent);
                    sink.Tell(n == size ? payload : payload[..n], Self);
                    sent += n;
                    inFlight++;
                }
            }
            Receive<long>(_ =>
            {
                inFlight--;
                Pump();
            });
            Pump();
        }
    }
}
