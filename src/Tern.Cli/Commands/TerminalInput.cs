// Feeds the user's keystrokes to the guest console. On a terminal, keys are read without
// echo or line editing (raw), Ctrl-A X quits as in QEMU, Ctrl-A S saves a snapshot (with
// --snapshot-on-exit), Ctrl-A Ctrl-A sends a Ctrl-A;
// from a pipe, bytes are passed through as they come.
using Tern.Machine;

namespace Tern.Cli.Commands;

/// <summary>Console input from this process's standard input.</summary>
public sealed class TerminalInput : IConsoleInput
{
    private const char CtrlA = '\u0001';

    /// <inheritdoc/>
    public IDisposable Subscribe(VirtMachine machine)
    {
        ArgumentNullException.ThrowIfNull(machine);
        var cts = new CancellationTokenSource();
        var thread = new Thread(() => Pump(machine, cts.Token)) { IsBackground = true, Name = "tern-console-input" };
        thread.Start();
        return cts;
    }

    /// <summary>What a key sends to a guest's serial console (Enter is CR, arrows are ANSI sequences).</summary>
    internal static byte[] KeyBytes(ConsoleKeyInfo key) => key.Key switch
    {
        ConsoleKey.Enter => "\r"u8.ToArray(),
        ConsoleKey.Backspace => [0x7F],
        ConsoleKey.UpArrow => "\u001b[A"u8.ToArray(),
        ConsoleKey.DownArrow => "\u001b[B"u8.ToArray(),
        ConsoleKey.RightArrow => "\u001b[C"u8.ToArray(),
        ConsoleKey.LeftArrow => "\u001b[D"u8.ToArray(),
        _ => key.KeyChar == '\0' ? [] : System.Text.Encoding.UTF8.GetBytes(key.KeyChar.ToString()),
    };

    private static void Pump(VirtMachine machine, CancellationToken token)
    {
        try
        {
            if (Console.IsInputRedirected)
            {
                using var stdin = Console.OpenStandardInput();
                var buffer = new byte[256];
                int n;
                while (!token.IsCancellationRequested && (n = stdin.Read(buffer)) > 0)
                    machine.ConsoleInput(buffer.AsSpan(0, n));
                return;
            }
            Console.TreatControlCAsInput = true;
            bool escape = false;
            while (!token.IsCancellationRequested)
            {
                var key = Console.ReadKey(intercept: true);
                char c = key.KeyChar;
                if (escape)
                {
                    escape = false;
                    if (c is 'x' or 'X')
                    {
                        machine.Quit();
                        return;
                    }
                    if (c is 's' or 'S')
                    {
                        machine.RequestSnapshot();
                        continue;
                    }
                    if (c != CtrlA)
                        continue;
                }
                else if (c == CtrlA)
                {
                    escape = true;
                    continue;
                }
                machine.ConsoleInput(KeyBytes(key));
            }
        }
        catch (InvalidOperationException)
        {
            // no console to read from: the guest simply gets no input
        }
        catch (IOException)
        {
            // the terminal went away
        }
    }
}
