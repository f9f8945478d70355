// What `tern node start` (or a test) tells a node: the cluster options plus the HTTP API.
using Tern.Cluster;

namespace Tern.Node;

/// <summary>Settings of a node process.</summary>
public sealed record NodeSettings
{
    /// <summary>The cluster side: name, remoting port, seeds, data dir, capacity.</summary>
    public required TernNodeOptions Cluster { get; init; }

    /// <summary>Address the HTTP API binds to; loopback unless told otherwise.</summary>
    public string HttpHost { get; init; } = "127.0.0.1";

    /// <summary>HTTP API port; 0 picks a free one (see <see cref="NodeHost.HttpAddress"/>).</summary>
    public int HttpPort { get; init; } = 8080;

    /// <summary>Token required (as "Authorization: Bearer ...") on mutating API calls; null disables the check.</summary>
    public string? ApiToken { get; init; }
}
