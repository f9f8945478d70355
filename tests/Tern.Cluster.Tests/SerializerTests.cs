// The wire protocol: every wire type has a stable manifest and survives a round trip
// through the Akka serializer the cluster actually binds.
using Akka.Actor;
using Akka.Configuration;
using Tern.Cluster.Hosting;
using Tern.Cluster.Protocol;
using Tern.Cluster.Serialization;
using SerializationException = System.Runtime.Serialization.SerializationException;

namespace Tern.Cluster.Tests;

public sealed class SerializerTests : IDisposable
{
    private readonly ActorSystem _system = ActorSystem.Create("serializer-test",
        TernHocon.Build(new TernNodeOptions { DataDir = Path.GetTempPath() }).WithFallback(ConfigurationFactory.Default()));

    public static TheoryData<Type> WireTypes()
    {
        var data = new TheoryData<Type>();
        foreach (var t in AllWireTypes())
            data.Add(t);
        return data;
    }

    private static IEnumerable<Type> AllWireTypes() => typeof(ITernWireMessage).Assembly.GetTypes()
        .Where(t => typeof(ITernWireMessage).IsAssignableFrom(t) && t is { IsClass: true, IsAbstract: false })
        .OrderBy(t => t.Name);

    [Fact]
    public void Every_wire_type_has_a_manifest_and_every_manifest_a_wire_type()
    {
        var missing = AllWireTypes().Where(t => !WireManifests.ByType.ContainsKey(t)).Select(t => t.Name).ToList();
        Assert.True(missing.Count == 0, $"wire types without a manifest in WireManifests: {string.Join(", ", missing)}");
        Assert.All(WireManifests.ByType.Keys, t => Assert.True(typeof(ITernWireMessage).IsAssignableFrom(t), t.Name));
        Assert.True(AllWireTypes().Count() >= 27);
    }

    [Theory]
    [MemberData(nameof(WireTypes))]
    public void Wire_type_round_trips_through_the_bound_serializer(Type type)
    {
        var sample = WireSamples.Create(type);
        var serialization = _system.Serialization;
        var serializer = serialization.FindSerializerFor(sample);
        Assert.IsType<TernMessagePackSerializer>(serializer);
        var tern = (TernMessagePackSerializer)serializer;
        string manifest = tern.Manifest(sample);
        byte[] bytes = tern.ToBinary(sample);
        var back = serialization.Deserialize(bytes, serializer.Identifier, manifest);
        Assert.IsType(type, back);
        Assert.Equal(bytes, tern.ToBinary(back));
    }

    [Fact]
    public void Unknown_manifest_is_a_serialization_exception()
    {
        var tern = new TernMessagePackSerializer((ExtendedActorSystem)_system);
        var e = Assert.Throws<SerializationException>(() => tern.FromBinary([0x90], "no.such.message"));
        Assert.Contains("no.such.message", e.Message);
    }

    [Fact]
    public void Malformed_bytes_are_a_serialization_exception()
    {
        var tern = new TernMessagePackSerializer((ExtendedActorSystem)_system);
        Assert.Throws<SerializationException>(() => tern.FromBinary([0xC1, 0xFF, 0x00], "vm.create"));
    }

    [Fact]
    public void A_type_outside_the_table_has_no_manifest()
    {
        var tern = new TernMessagePackSerializer((ExtendedActorSystem)_system);
        Assert.Throws<SerializationException>(() => tern.Manifest("not a wire message"));
    }

    [Fact]
    public void Trace_context_survives_the_wire()
    {
        var create = new CreateVm("a", (VmSpec)WireSamples.Create(typeof(VmSpec)), new TraceContext("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "k=v"));
        var tern = new TernMessagePackSerializer((ExtendedActorSystem)_system);
        var back = (CreateVm)tern.FromBinary(tern.ToBinary(create), tern.Manifest(create));
        Assert.Equal(create.Trace, back.Trace);
    }

    public void Dispose() => _system.Terminate().Wait(TimeSpan.FromSeconds(10));
}
