// The `tern` command as a user runs it: a child process of the built tern.dll, its output
// captured, bounded in time.
using System.Diagnostics;
using System.Text;

namespace Tern.Node.Tests;

internal sealed class TernProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _out = new();
    private readonly StringBuilder _err = new();
    private Task _pumps = Task.CompletedTask;

    private TernProcess(Process process) => _process = process;

    public string Output
    {
        get
        {
            lock (_out)
                return _out.ToString();
        }
    }

    public string Error
    {
        get
        {
            lock (_err)
                return _err.ToString();
        }
    }

    public static TernProcess Start(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "tern.dll"));
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        var p = new TernProcess(Process.Start(psi) ?? throw new InvalidOperationException("could not start dotnet"));
        // Character by character, so output without a newline (a progress bar) is seen too.
        p._pumps = Task.WhenAll(Pump(p._process.StandardOutput, p._out), Pump(p._process.StandardError, p._err));
        return p;
    }

    /// <summary>Runs `tern ARGS` to its end (at most <paramref name="limit"/>).</summary>
    public static async Task<(int Code, string Output, string Error)> RunAsync(TimeSpan limit, params string[] args)
    {
        using var p = Start(args);
        int code = await p.WaitAsync(limit);
        return (code, p.Output, p.Error);
    }

    public async Task<int> WaitAsync(TimeSpan limit)
    {
        using var timeout = new CancellationTokenSource(limit);
        try
        {
            await _process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"tern did not finish within {limit.TotalSeconds:0} s; output:\n{Output}\nerrors:\n{Error}");
        }
        // The pumps drain what is left: they end when the pipes close (bounded, in case a
        // child of tern held them open); a fixed pause could lose the last lines under load.
        try
        {
            await _pumps.WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (TimeoutException)
        {
            // Report what arrived.
        }
        return _process.ExitCode;
    }

    private static async Task Pump(StreamReader reader, StringBuilder into)
    {
        var buffer = new char[4096];
        int n;
        while ((n = await reader.ReadAsync(buffer)) > 0)
        {
            lock (into)
                into.Append(buffer, 0, n);
        }
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
