// The one serializer for Tern's own messages and journal events: MessagePack with keyed
// fields, a stable string manifest per type, and settings safe for hostile input.
using Akka.Actor;
using Akka.Serialization;
using MessagePack;
using MessagePack.Resolvers;
using SerializationException = System.Runtime.Serialization.SerializationException;

namespace Tern.Cluster.Serialization;

/// <summary>
/// Serializes <see cref="Protocol.ITernWireMessage"/> types with MessagePack under the manifests of
/// <see cref="WireManifests"/>. Untrusted-data security is on and LZ4 is off, because remote
/// peers and journal rows are input. An unknown manifest is a <see cref="SerializationException"/>.
/// </summary>
public sealed class TernMessagePackSerializer(ExtendedActorSystem system) : SerializerWithStringManifest(system)
{
    /// <summary>The serializer id, fixed forever (Akka reserves 0–40).</summary>
    public const int Id = 7113;

    /// <summary>The MessagePack options used on the wire and in the journal.</summary>
    public static readonly MessagePackSerializerOptions Options = MessagePackSerializerOptions.Standard
        .WithResolver(StandardResolver.Instance)
        .WithSecurity(MessagePackSecurity.UntrustedData)
        .WithCompression(MessagePackCompression.None);

    /// <inheritdoc/>
    public override int Identifier => Id;

    /// <inheritdoc/>
    public override string Manifest(object o)
    {
        ArgumentNullException.ThrowIfNull(o);
        return WireManifests.ByType.TryGetValue(o.GetType(), out var name)
            ? name
            : throw new SerializationException($"{o.GetType().FullName} has no wire manifest: add it to {nameof(WireManifests)}");
    }

    /// <inheritdoc/>
    public override byte[] ToBinary(object obj)
    {
        ArgumentNullException.ThrowIfNull(obj);
        return MessagePackSerializer.Serialize(obj.GetType(), obj, Options);
    }

    /// <inheritdoc/>
    public override object FromBinary(byte[] bytes, string manifest)
    {
        if (!WireManifests.ByName.TryGetValue(manifest, out var type))
            throw new SerializationException($"unknown Tern wire manifest '{manifest}'");
        try
        {
            return MessagePackSerializer.Deserialize(type, bytes, Options)
                ?? throw new SerializationException($"'{manifest}' decoded to null");
        }
        catch (MessagePackSerializationException e)
        {
            throw new SerializationException($"malformed '{manifest}' message: {e.Message}", e);
        }
    }
}
