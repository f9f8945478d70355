// Runs the real `tern` command (the built tern.dll) as a child process, as a user would.
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Tern.Node.Tests;

internal static class TernCli
{
    public sealed record Result(int Code, string Output, string Error);

    /// <summary>Runs `tern ARGS` with TERN_HOME = <paramref name="home"/>; kills it after <paramref name="timeout"/>.</summary>
    public static async Task<Result> RunAsync(string home, TimeSpan timeout, params string[] args)
    {
        using var process = Start(home, args);
        return await WaitAsync(process, timeout, args);
    }

    /// <summary>Runs `tern ARGS` with <paramref name="input"/> on its standard input.</summary>
    public static async Task<Result> RunWithInputAsync(string home, TimeSpan timeout, string input, params string[] args)
    {
        using var process = Start(home, input, args);
        return await WaitAsync(process, timeout, args);
    }

    /// <summary>Starts `tern ARGS` with TERN_HOME = <paramref name="home"/> and its input closed.</summary>
    public static Process Start(string home, params string[] args) => Start(home, "", args);

    private static Process Start(string home, string input, string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "tern.dll"));
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        psi.Environment["TERN_HOME"] = home;
        psi.Environment.Remove("TERN_API");
        psi.Environment.Remove("TERN_API_TOKEN");
        var process = Process.Start(psi) ?? throw new InvalidOperationException("could not start dotnet");
        process.StandardInput.Write(input);
        process.StandardInput.Close();
        return process;
    }

    /// <summary>Collects a started tern's output until it exits; kills it after <paramref name="timeout"/>.</summary>
    public static async Task<Result> WaitAsync(Process process, TimeSpan timeout, params string[] args)
    {
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cancel.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            throw new TimeoutException($"tern {string.Join(' ', args)} did not finish within {timeout.TotalSeconds} s:\n{await stdout}\n{await stderr}");
        }
        return new(process.ExitCode, await stdout, await stderr);
    }

    /// <summary>A first port of <paramref name="count"/> consecutive free loopback ports.</summary>
    public static int FreePortRange(int count) => Tern.Tests.Shared.FreePorts.Range(count);
}
