// Specs and host figures shared by the tests.
using Tern.Cluster.Protocol;

namespace Tern.Cluster.Tests;

internal static class TestSpecs
{
    public const ulong Mib = 1UL << 20;

    public static VmSpec Spec(string name, ulong memoryMib = 64, int harts = 1, string? host = null, byte[]? kernel = null) =>
        new(name, memoryMib * Mib, harts, ImageRef.FromBytes(kernel ?? [0x13, 0, 0, 0]), null, null, "", [], host);

    public static HostCapacity Host(string name, ulong memoryMib, int harts = 2, ulong usedMib = 0, int guests = 0) =>
        new(name, $"akka.tcp://tern@127.0.0.1:{4000 + name.Length}/{name}", memoryMib * Mib, harts, usedMib * Mib, guests, 1);
}
