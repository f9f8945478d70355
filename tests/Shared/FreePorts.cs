// Loopback ports for tests that must name a port before something binds it (node processes,
// cluster seeds, HTTP APIs). Two faults of the bind(0)-and-close way this replaces: the kernel may
// hand the same just-closed port out twice (a CI-like run gave node-1 and node-3 of one test
// cluster the same port: both listened on it, as Akka binds with address reuse, and the cluster
// never formed), and its ports lie in the ephemeral range, where an outgoing connection of any
// process may take one before the node binds it. Ports here come from below that range, at
// random, are checked free, and are never handed out twice in one process.
using System.Net;
using System.Net.Sockets;

namespace Tern.Tests.Shared;

internal static class FreePorts
{
    private const int Lowest = 10000;
    private static readonly int Highest = FirstEphemeralPort() - 1;
    private static readonly HashSet<int> Given = [];

    /// <summary>A loopback port that is free now and outside the ephemeral range.</summary>
    public static int Next() => Range(1);

    /// <summary>The first of <paramref name="count"/> consecutive loopback ports that are free now, outside the ephemeral range.</summary>
    public static int Range(int count)
    {
        for (int attempt = 0; attempt < 500; attempt++)
        {
            int first = Random.Shared.Next(Lowest, Highest - count + 2);
            lock (Given)
            {
                if (Enumerable.Range(first, count).Any(Given.Contains) || !Enumerable.Range(first, count).All(IsFree))
                    continue;
                Given.UnionWith(Enumerable.Range(first, count));
                return first;
            }
        }
        throw new InvalidOperationException($"no {count} consecutive free loopback ports between {Lowest} and {Highest}");
    }

    private static bool IsFree(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    // Linux: /proc/sys/net/ipv4/ip_local_port_range is "first last"; 32768 is its default.
    private static int FirstEphemeralPort()
    {
        const int fallback = 32768;
        try
        {
            var parts = File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range").Split((char[])['\t', ' ', '\n'], StringSplitOptions.RemoveEmptyEntries);
            return parts.Length > 0 && int.TryParse(parts[0], out int first) && first > Lowest + 1000 ? first : fallback;
        }
        catch (IOException)
        {
            return fallback;
        }
        catch (UnauthorizedAccessException)
        {
            return fallback;
        }
    }
}
