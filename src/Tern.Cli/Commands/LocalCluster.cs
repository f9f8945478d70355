// The record of a local cluster that `tern cluster up` started: TERN_HOME/cluster.json (mode
// 0600, it holds the API token) lists every node's name, pid, ports, API address, data dir and
// log. Later `tern` commands with the same TERN_HOME find the cluster through it.
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Serialization;
using Tern.Storage;

namespace Tern.Cli.Commands;

/// <summary>One node of a local cluster.</summary>
public sealed record LocalNode(string Name, int Pid, int Port, int HttpPort, string Api, string DataDir, string Log);

/// <summary>A local cluster started by `tern cluster up`.</summary>
public sealed record LocalCluster(string Token, string Journal, DateTimeOffset Started, IReadOnlyList<LocalNode> Nodes)
{
    /// <summary>The record's file in <paramref name="home"/>.</summary>
    public static string RecordPath(string home) => Path.Combine(home, "cluster.json");

    /// <summary>TERN_HOME, or ~/.tern (the same home the storage commands use).</summary>
    public static string Home() => StoragePool.DefaultHome();

    /// <summary>The cluster recorded in <paramref name="home"/>, or null. A damaged record is an <see cref="InvalidDataException"/>.</summary>
    public static LocalCluster? Read(string home)
    {
        string path = RecordPath(home);
        if (!File.Exists(path))
            return null;
        try
        {
            return JsonSerializer.Deserialize(File.ReadAllBytes(path), LocalClusterJson.Default.LocalCluster)
                ?? throw new InvalidDataException($"{path} is empty");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path} is damaged ({e.Message}); remove it once its nodes are stopped", e);
        }
    }

    /// <summary>Writes the record, readable by its owner only.</summary>
    public void Write(string home)
    {
        Directory.CreateDirectory(home);
        string path = RecordPath(home);
        string tmp = path + ".tmp";
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using (var file = new FileStream(tmp, options))
            JsonSerializer.Serialize(file, this, LocalClusterJson.Default.LocalCluster);
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>Removes the record of <paramref name="home"/>.</summary>
    public static void Remove(string home) => File.Delete(RecordPath(home));

    /// <summary>The API of the first node that still runs (else the first node's).</summary>
    public string Api => Nodes.FirstOrDefault(IsRunning)?.Api ?? Nodes[0].Api;

    /// <summary>Whether a process <paramref name="pid"/> exists (a node just spawned may not show its own command line yet).</summary>
    public static bool Exists(int pid)
    {
        if (Directory.Exists("/proc/self"))
            return Directory.Exists($"/proc/{pid}");
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    /// <summary>
    /// Whether <paramref name="node"/>'s process still runs. On Linux the process's command line
    /// must name the node's data dir, so a recycled pid is not mistaken for the node.
    /// </summary>
    public static bool IsRunning(LocalNode node)
    {
        ArgumentNullException.ThrowIfNull(node);
        string cmdline = $"/proc/{node.Pid}/cmdline";
        if (Directory.Exists("/proc/self"))
        {
            try
            {
                return File.ReadAllText(cmdline).Split('\0').Contains(node.DataDir, StringComparer.Ordinal);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return false;
            }
        }
        try
        {
            using var process = Process.GetProcessById(node.Pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }
}

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, WriteIndented = true)]
[JsonSerializable(typeof(LocalCluster))]
internal sealed partial class LocalClusterJson : JsonSerializerContext;
