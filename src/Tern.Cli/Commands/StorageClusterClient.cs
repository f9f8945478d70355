// `tern pv|vg|lv|pvmove` against a cluster: with --cluster URL, or when TERN_HOME records a
// local cluster (`tern cluster up`), a storage verb is not run on this machine's files but sent
// as its arguments to POST /api/storage/verbs; the cluster's coordinator runs it on the
// cluster's pool and the CLI prints its output and exits with its code. The token comes from
// --token, else TERN_API_TOKEN, else the local cluster's record.
using System.CommandLine;
using System.Net.Http.Json;
using System.Text.Json;

namespace Tern.Cli.Commands;

/// <summary>Sends storage verbs to a cluster's API.</summary>
internal static class StorageClusterClient
{
    /// <summary>The API path that runs a storage verb.</summary>
    public const string VerbsPath = "/api/storage/verbs";

    private static readonly Option<string?> Cluster = new("--cluster")
    {
        Description = "Run the verb on the cluster whose node API is at URL (default: the local cluster recorded in TERN_HOME, if any; else this machine's pool).",
        Recursive = true,
    };

    private static readonly Option<string?> Token = new("--token") { Description = "API token for changes on a cluster (env TERN_API_TOKEN).", Recursive = true };

    /// <summary>Adds --cluster and --token to a verb family.</summary>
    public static void AddOptions(Command command)
    {
        command.Options.Add(Cluster);
        command.Options.Add(Token);
    }

    /// <summary>The cluster's API and token when the verb goes to a cluster, or null to run it here.</summary>
    /// <exception cref="InvalidDataException">TERN_HOME's cluster record is damaged.</exception>
    public static (string Api, string? Token)? Target(ParseResult parse)
    {
        string? token = parse.GetValue(Token) ?? (Environment.GetEnvironmentVariable("TERN_API_TOKEN") is { Length: > 0 } t ? t : null);
        if (parse.GetValue(Cluster) is { } url)
        {
            if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
                throw new InvalidDataException($"--cluster {url}: expected a node's API address such as http://127.0.0.1:8080");
            return (url, token);
        }
        return LocalCluster.Read(LocalCluster.Home()) is { } local ? (local.Api, token ?? local.Token) : null;
    }

    /// <summary>The verb's words as the user typed them, without --cluster and --token (the cluster runs them as they are).</summary>
    public static List<string> VerbArgs(ParseResult parse)
    {
        var args = new List<string>();
        var tokens = parse.Tokens;
        for (int i = 0; i < tokens.Count; i++)
        {
            if (tokens[i].Type == System.CommandLine.Parsing.TokenType.Option && tokens[i].Value is "--cluster" or "--token")
            {
                i++; // and its value
                continue;
            }
            args.Add(tokens[i].Value);
        }
        return args;
    }

    /// <summary>Sends the verb to <paramref name="api"/> and prints the cluster's answer; returns the verb's exit code.</summary>
    public static async Task<int> SendAsync(ParseResult parse, string verb, string api, string? token, CancellationToken ct)
    {
        var output = parse.InvocationConfiguration.Output;
        var err = parse.InvocationConfiguration.Error;
        using var trace = CliTracing.Begin(parse);
        // A verb such as pvmove runs as long as it has extents to move; Ctrl-C ends the wait.
        using var http = new HttpClient { BaseAddress = new Uri(api), Timeout = Timeout.InfiniteTimeSpan };
        if (token is { Length: > 0 })
            http.DefaultRequestHeaders.Authorization = new("Bearer", token);
        try
        {
            using var response = await http.PostAsJsonAsync(VerbsPath, new { args = VerbArgs(parse) }, ct).ConfigureAwait(false);
            JsonElement body;
            try
            {
                body = await response.Content.ReadFromJsonAsync<JsonElement>(ct).ConfigureAwait(false);
            }
            catch (JsonException)
            {
                err.WriteLine($"tern {verb}: the cluster at {api} answered {(int)response.StatusCode} {response.ReasonPhrase} without a JSON body");
                return StorageCommands.IoError;
            }
            if (!response.IsSuccessStatusCode || body.ValueKind != JsonValueKind.Object || !body.TryGetProperty("exitCode", out var code))
            {
                string reason = body.ValueKind == JsonValueKind.Object && body.TryGetProperty("error", out var e) ? e.GetString() ?? "" : $"{(int)response.StatusCode} {response.ReasonPhrase}";
                err.WriteLine($"tern {verb}: {reason}");
                return (int)response.StatusCode is >= 400 and < 500 ? StorageCommands.UsageError : StorageCommands.IoError;
            }
            output.Write(Text(body, "stdout"));
            err.Write(Text(body, "stderr"));
            return code.GetInt32();
        }
        catch (HttpRequestException e)
        {
            err.WriteLine($"tern {verb}: cannot reach the cluster at {api}: {e.Message}");
            return StorageCommands.IoError;
        }
    }

    private static string Text(JsonElement body, string property) =>
        body.TryGetProperty(property, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : "";
}
