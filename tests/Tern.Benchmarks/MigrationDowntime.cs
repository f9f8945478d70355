// Measures where a live migration's downtime goes: a dirtier guest (docs/migration.md) moves
// back and forth between two machines in this process over loopback TCP, and the median and
// 90th percentile of each part of the downtime are printed.
//   dotnet run -c Release --project tests/Tern.Benchmarks -- migration-downtime [moves] [pages/s]
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Tern.Machine;
using Tern.Machine.Snapshot;
using Tern.Migration;
using Tern.Tests.Shared;

namespace Tern.Benchmarks;

internal static class MigrationDowntime
{
    public static async Task<int> Run(string[] args)
    {
        int moves = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 20;
        int rate = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 1000;
        byte[] elf = DirtierGuest.Elf(rate, 4096);
        var guest = new MachineThread(console =>
        {
            var m = new VirtMachine(new MachineOptions { MemoryBytes = 256UL << 20, Console = console });
            m.LoadKernel(elf, htif: false);
            return m;
        }, "guest");
        guest.Start();
        await Task.Delay(500);
        var stats = new List<MigrationStats>();
        for (int i = 0; i < moves; i++)
        {
            var (next, s) = await Move(guest);
            guest.Dispose();
            guest = next;
            stats.Add(s);
            await Task.Delay(100);
        }
        guest.Dispose();
        Console.WriteLine($"{moves} migrations of a 256 MiB guest dirtying {rate} pages/s (16 MiB working set), loopback TCP, ms:");
        Console.WriteLine("part          median      p90");
        Print("pause", stats.Select(s => s.PauseMs));
        Print("final copy", stats.Select(s => s.FinalCopyMs));
        Print("ready wait", stats.Select(s => s.ReadyWaitMs));
        Print("go->started", stats.Select(s => s.AckWaitMs - s.ReadyWaitMs));
        Print("downtime", stats.Select(s => s.DowntimeMs));
        Print("total time", stats.Select(s => s.TotalTimeMs));
        return 0;
    }

    private static void Print(string name, IEnumerable<double> values)
    {
        var v = values.Order().ToArray();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{name,-12} {v[v.Length / 2],8:F2} {v[Math.Min(v.Length - 1, v.Length * 9 / 10)],8:F2}"));
    }

    private static async Task<(MachineThread, MigrationStats)> Move(MachineThread source)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var accept = listener.AcceptTcpClientAsync();
        using var client = new TcpClient { NoDelay = true };
        await client.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
        using var server = await accept;
        server.NoDelay = true;
        var receive = Task.Run(() => MigrationTarget.ReceiveAsync(server.GetStream(), Empty, "guest"));
        var stats = await new MigrationSource(source).MigrateAsync(client.GetStream());
        return (await receive, stats);
    }

    private static VirtMachine Empty(MachineShape shape, Stream console) =>
        new(new MachineOptions { MemoryBytes = shape.MemoryBytes, Harts = shape.Harts, Clock = shape.Clock, Console = console });
}
