// Guest programs for the cluster tests: the committed hello guest and the ticker.
using Tern.Tests.Shared;

namespace Tern.Cluster.Tests;

internal static class Guests
{
    public static string HelloPath
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Cluster.sln")))
                dir = dir.Parent;
            return Path.Combine(dir?.FullName ?? throw new DirectoryNotFoundException("Cluster.sln not found above the test binaries"), "src", "guests", "bin", "hello", "hello.elf");
        }
    }

    public static byte[] Ticker() => TickerGuest.Elf();

    /// <summary>Fills 4 MiB with a pattern, then prints "beat N ok ms=T" every 250 ms after checking it.</summary>
    public static string HeartbeatPath => Path.Combine(Path.GetDirectoryName(Path.GetDirectoryName(HelloPath))!, "migrate", "heartbeat.elf");
}
