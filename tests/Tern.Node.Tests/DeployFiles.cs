// Reads deploy/ and k8s/ as the tools would: YAML (with anchors and merge keys, several
// documents per file) through YamlDotNet, and the Dockerfile instruction by instruction.
using System.Text.Json;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.Serialization;

namespace Tern.Node.Tests;

internal static class DeployFiles
{
    public static string RepoRoot
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Cluster.sln")))
                dir = dir.Parent;
            return dir?.FullName ?? throw new InvalidOperationException("Cluster.sln not found above " + AppContext.BaseDirectory);
        }
    }

    public static string PathOf(params string[] parts) => Path.Combine([RepoRoot, .. parts]);

    /// <summary>Every document of a YAML file, as nested maps (string keys), lists and strings.</summary>
    public static List<Dictionary<string, object?>> Yaml(string path)
    {
        var deserializer = new DeserializerBuilder().Build();
        using var reader = new StringReader(File.ReadAllText(path));
        var parser = new MergingParser(new Parser(reader));
        parser.Consume<StreamStart>();
        var docs = new List<Dictionary<string, object?>>();
        while (parser.Accept<DocumentStart>(out _))
        {
            if (Normalize(deserializer.Deserialize<object?>(parser)) is Dictionary<string, object?> doc)
                docs.Add(doc);
        }
        return docs;
    }

    private static object? Normalize(object? value) => value switch
    {
        Dictionary<object, object?> map => map.ToDictionary(p => (string)p.Key, p => Normalize(p.Value)),
        List<object?> list => list.Select(Normalize).ToList(),
        _ => value,
    };

    public static Dictionary<string, object?> Map(object? value, string what) =>
        value as Dictionary<string, object?> ?? throw new Xunit.Sdk.XunitException($"{what} is not a map");

    public static List<object?> List(object? value, string what) =>
        value as List<object?> ?? throw new Xunit.Sdk.XunitException($"{what} is not a list");

    public static Dictionary<string, object?> Map(this Dictionary<string, object?> map, string key) =>
        Map(map.GetValueOrDefault(key), key);

    public static List<object?> List(this Dictionary<string, object?> map, string key) =>
        List(map.GetValueOrDefault(key), key);

    public static string Str(this Dictionary<string, object?> map, string key) =>
        map.GetValueOrDefault(key) as string ?? throw new Xunit.Sdk.XunitException($"'{key}' is not a string");

    /// <summary>A Dockerfile instruction: keyword, its text (continuations joined) and the stage it is in.</summary>
    public sealed record DockerInstruction(string Keyword, string Text, string? Stage)
    {
        /// <summary>The exec-form arguments (a JSON array), or null for the shell form.</summary>
        public string[]? Exec => Text.StartsWith('[') ? JsonSerializer.Deserialize<string[]>(Text) : null;
    }

    public static List<DockerInstruction> Dockerfile(string path)
    {
        var result = new List<DockerInstruction>();
        string? stage = null;
        var pending = "";
        foreach (var raw in File.ReadAllLines(path))
        {
            string line = raw.Trim();
            if (pending.Length == 0 && (line.Length == 0 || line.StartsWith('#')))
                continue;
            if (line.StartsWith('#'))
                continue;
            if (line.EndsWith('\\'))
            {
                pending += line[..^1].TrimEnd() + " ";
                continue;
            }
            string full = pending + line;
            pending = "";
            int space = full.IndexOf(' ', StringComparison.Ordinal);
            string keyword = full[..space].ToUpperInvariant();
            string text = full[(space + 1)..].Trim();
            if (keyword == "FROM")
            {
                var parts = text.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                stage = parts.Length == 3 && parts[1].Equals("AS", StringComparison.OrdinalIgnoreCase) ? parts[2] : null;
            }
            result.Add(new DockerInstruction(keyword, text, stage));
        }
        Assert.True(pending.Length == 0, "the Dockerfile ends inside a continued line");
        return result;
    }

    /// <summary>Whether a .dockerignore excludes <paramref name="relative"/> (last matching pattern wins; '!' re-includes).</summary>
    public static bool Ignored(IEnumerable<string> patterns, string relative)
    {
        bool ignored = false;
        foreach (var raw in patterns.Select(p => p.Trim()).Where(p => p.Length > 0 && !p.StartsWith('#')))
        {
            bool negate = raw.StartsWith('!');
            string pattern = (negate ? raw[1..] : raw).TrimEnd('/');
            string regex = "^" + System.Text.RegularExpressions.Regex.Escape(pattern)
                .Replace(@"\*\*/", "(.*/)?", StringComparison.Ordinal).Replace(@"\*\*", ".*", StringComparison.Ordinal)
                .Replace(@"\*", "[^/]*", StringComparison.Ordinal).Replace(@"\?", "[^/]", StringComparison.Ordinal) + "(/.*)?$";
            if (System.Text.RegularExpressions.Regex.IsMatch(relative, regex))
                ignored = !negate;
        }
        return ignored;
    }
}
