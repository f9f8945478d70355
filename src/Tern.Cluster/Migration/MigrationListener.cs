// The target's end of the dedicated migration connection: a TCP listener on the node's own
// address, opened for one migration, that accepts the first connection presenting the
// one-time token and closes. Guest pages never go through Akka messages.
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace Tern.Cluster.Migration;

/// <summary>A one-shot, token-guarded TCP endpoint for one incoming migration.</summary>
public sealed class MigrationListener : IDisposable
{
    /// <summary>Length of the token in characters (32 hex digits: 128 random bits).</summary>
    public const int TokenLength = 32;

    private readonly TcpListener _listener;

    /// <summary>Listens on <paramref name="bindAddress"/> (a free port) with a fresh token.</summary>
    public MigrationListener(string bindAddress)
    {
        var address = IPAddress.TryParse(bindAddress, out var ip) ? ip : Dns.GetHostAddresses(bindAddress).First();
        _listener = new TcpListener(address, 0);
        _listener.Start(1);
        Token = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(TokenLength / 2));
        var local = (IPEndPoint)_listener.LocalEndpoint;
        Endpoint = $"{bindAddress}:{local.Port}";
    }

    /// <summary>host:port the source connects to.</summary>
    public string Endpoint { get; }

    /// <summary>The secret the source sends first.</summary>
    public string Token { get; }

    /// <summary>
    /// Waits for the source: the first connection that presents the token within the time
    /// allowed. Connections with a wrong token are closed and the wait goes on.
    /// </summary>
    public async Task<TcpClient> AcceptAsync(CancellationToken ct)
    {
        byte[] expected = Encoding.ASCII.GetBytes(Token);
        while (true)
        {
            var client = await _listener.AcceptTcpClientAsync(ct).ConfigureAwait(false);
            client.NoDelay = true;
            try
            {
                var got = new byte[TokenLength];
                using var read = CancellationTokenSource.CreateLinkedTokenSource(ct);
                read.CancelAfter(TimeSpan.FromSeconds(5));
                await client.GetStream().ReadExactlyAsync(got, read.Token).ConfigureAwait(false);
                if (CryptographicOperations.FixedTimeEquals(got, expected))
                {
                    _listener.Stop();
                    return client;
                }
            }
            catch (Exception e) when (e is IOException or OperationCanceledException or SocketException && !ct.IsCancellationRequested)
            {
                // a stranger that did not finish its token; keep waiting for the source
            }
            client.Dispose();
        }
    }

    /// <summary>Connects to a target's endpoint and presents the token.</summary>
    public static async Task<TcpClient> ConnectAsync(string endpoint, string token, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        ArgumentNullException.ThrowIfNull(token);
        int colon = endpoint.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(endpoint.AsSpan(colon + 1), System.Globalization.CultureInfo.InvariantCulture, out int port))
            throw new IOException($"'{endpoint}' is not a host:port migration endpoint");
        var client = new TcpClient { NoDelay = true };
        try
        {
            await client.ConnectAsync(endpoint[..colon], port, ct).ConfigureAwait(false);
            await client.GetStream().WriteAsync(Encoding.ASCII.GetBytes(token), ct).ConfigureAwait(false);
            return client;
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }

    /// <summary>Closes the listener (an accept in progress ends with an exception).</summary>
    public void Dispose() => _listener.Dispose();
}
