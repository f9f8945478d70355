// A `tern node start` child process, as an operator would run it: started from the built
// tern.dll, ready once it prints its API address, stopped by killing it.
using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Tern.Node.Tests;

internal sealed partial class NodeProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _log = new();
    private readonly TaskCompletionSource<string> _api = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private NodeProcess(Process process) => _process = process;

    public string ApiAddress => _api.Task.IsCompletedSuccessfully ? _api.Task.Result : throw new InvalidOperationException("the node has not started");

    public string Log
    {
        get
        {
            lock (_log)
                return _log.ToString();
        }
    }

    public bool HasExited => _process.HasExited;

    public int Id => _process.Id;

    public int ExitCode => _process.ExitCode;

    public static NodeProcess Start(params string[] args) => Start(new Dictionary<string, string>(), args);

    /// <summary>Starts `tern node start ARGS` with <paramref name="environment"/> added to this process's environment.</summary>
    public static NodeProcess Start(IReadOnlyDictionary<string, string> environment, params string[] args) =>
        StartTern(environment, ["node", "start", .. args]);

    /// <summary>Starts `tern ARGS` (any verb) with <paramref name="environment"/> added.</summary>
    public static NodeProcess StartTern(IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "tern.dll"));
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        // A node's settings come from TERN_* variables too: the test's environment must not leak in.
        foreach (var setting in NodeConfiguration.Settings.Append(NodeConfiguration.ConfigFile))
            psi.Environment.Remove(setting.Environment);
        psi.Environment["Logging__LogLevel__Default"] = "Warning";
        foreach (var (name, value) in environment)
            psi.Environment[name] = value;
        var node = new NodeProcess(Process.Start(psi) ?? throw new InvalidOperationException("could not start dotnet"));
        node._process.OutputDataReceived += (_, e) => node.Line(e.Data);
        node._process.ErrorDataReceived += (_, e) => node.Line(e.Data);
        node._process.BeginOutputReadLine();
        node._process.BeginErrorReadLine();
        node._process.EnableRaisingEvents = true;
        node._process.Exited += (_, _) => node._api.TrySetException(new InvalidOperationException($"the node exited with {node._process.ExitCode}:\n{node.Log}"));
        return node;
    }

    public async Task<string> WaitForApiAsync() => await _api.Task.WaitAsync(TimeSpan.FromSeconds(60));

    public async Task<int> WaitForExitAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await _process.WaitForExitAsync(timeout.Token);
        return _process.ExitCode;
    }

    private void Line(string? line)
    {
        if (line is null)
            return;
        lock (_log)
            _log.AppendLine(line);
        if (ApiLine().Match(line) is { Success: true } m)
            _api.TrySetResult(m.Groups[1].Value);
    }

    [GeneratedRegex(@"API (http://\S+),")]
    private static partial Regex ApiLine();

    public static int FreePort() => Tern.Tests.Shared.FreePorts.Next();

    /// <summary>
    /// Waits (bounded) until every node in <paramref name="apis"/> lists <paramref name="count"/>
    /// members, all Up and reachable. Killing or partitioning a node earlier is a different test:
    /// the split-brain resolver counts only Up members, so survivors that are still Joining or
    /// WeaklyUp in some view can decide to down themselves.
    /// </summary>
    public static async Task WaitForMembersUpAsync(HttpClient http, IReadOnlyList<string> apis, int count, Func<string> logs, int seconds = 90)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        string seen = "nothing yet";
        while (true)
        {
            bool all = true;
            foreach (string api in apis)
            {
                try
                {
                    var members = (await http.GetFromJsonAsync<JsonElement[]>(api + "/api/cluster/members"))!;
                    seen = $"{api}: " + string.Join(", ", members.Select(m => $"{m.GetProperty("name").GetString()} {m.GetProperty("status").GetString()}{(m.GetProperty("reachable").GetBoolean() ? "" : " unreachable")}"));
                    if (members.Length != count || !members.All(m => m.GetProperty("status").GetString() == "up" && m.GetProperty("reachable").GetBoolean()))
                        all = false;
                }
                catch (HttpRequestException e)
                {
                    seen = $"{api}: {e.Message}";
                    all = false;
                }
                if (!all)
                    break;
            }
            if (all)
                return;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"the nodes did not all see {count} members Up within {seconds} s; last seen {seen}:\n{logs()}");
            await Task.Delay(250);
        }
    }

    /// <summary>Freezes the node (SIGSTOP): to the others it is silent, as behind a partition, until <see cref="Resume"/>.</summary>
    public void Pause() => Signal("STOP");

    /// <summary>Lets a paused node run again (SIGCONT): the partition heals.</summary>
    public void Resume() => Signal("CONT");

    private void Signal(string signal)
    {
        using var kill = Process.Start("kill", ["-" + signal, _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit(10_000);
        if (kill.ExitCode != 0)
            throw new InvalidOperationException($"kill -{signal} {_process.Id} exited {kill.ExitCode}");
    }

    /// <summary>Kills the node at once (SIGKILL): no leaving, no cleanup, as a crash would.</summary>
    public void Kill()
    {
        _process.Kill(entireProcessTree: true);
        _process.WaitForExit(10_000);
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(10_000);
        }
        _process.Dispose();
    }
}
