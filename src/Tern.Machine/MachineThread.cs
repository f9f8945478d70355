// A guest on a thread of its own, as a KVM vCPU thread is: the thread runs the machine, and
// other threads (an actor, the CLI) control it through requests that take effect between
// quanta: pause, resume, stop, or any function of the machine (snapshot, state capture).
// Console output is delivered as it is written, on the machine's thread.
using System.Collections.Concurrent;

namespace Tern.Machine;

/// <summary>Where a machine thread's guest is in its life.</summary>
public enum MachineRunState
{
    /// <summary>Built, not started.</summary>
    Created,
    /// <summary>The guest is executing (or idle in WFI).</summary>
    Running,
    /// <summary>Paused by the host between quanta.</summary>
    Paused,
    /// <summary>The guest powered off, reset, or was stopped; the thread has ended.</summary>
    Stopped,
}

/// <summary>Runs a <see cref="VirtMachine"/> on a dedicated thread.</summary>
public sealed class MachineThread : IDisposable
{
    private readonly VirtMachine _machine;
    private readonly Thread _thread;
    private readonly ConcurrentQueue<Action> _requests = new();
    private readonly SemaphoreSlim _signal = new(0);
    private readonly TaskCompletionSource<ExitReason> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile bool _paused;
    private volatile bool _stopping;
    private volatile MachineRunState _state = MachineRunState.Created;

    /// <summary>
    /// Builds the machine with <paramref name="build"/>, which receives the console stream to give
    /// the machine (its output is raised through <see cref="ConsoleOutput"/>).
    /// </summary>
    public MachineThread(Func<Stream, VirtMachine> build, string name)
    {
        ArgumentNullException.ThrowIfNull(build);
        _machine = build(new ConsoleTap(this));
        _thread = new Thread(Loop) { IsBackground = true, Name = $"vcpu:{name}" };
    }

    /// <summary>Raised with each piece of console output, on the machine's thread.</summary>
    public event Action<ReadOnlyMemory<byte>>? ConsoleOutput;

    /// <summary>
    /// The machine. Touch it directly only before <see cref="Start"/> (a migration target fills
    /// its RAM and state then); afterwards go through <see cref="InvokeAsync{T}"/>.
    /// </summary>
    public VirtMachine Machine => _machine;

    /// <summary>The current state.</summary>
    public MachineRunState State => _state;

    /// <summary>Completes with the reason the guest ended (power-off, reset, stop).</summary>
    public Task<ExitReason> Completion => _completion.Task;

    /// <summary>The exit code the guest reported, once it has ended.</summary>
    public int ExitCode => _machine.ExitCode;

    /// <summary>Starts the guest.</summary>
    public void Start()
    {
        if (_state != MachineRunState.Created)
            throw new InvalidOperationException($"the machine thread is {_state}, not Created");
        _state = MachineRunState.Running;
        _thread.Start();
    }

    /// <summary>Runs <paramref name="action"/> on the machine's thread between quanta.</summary>
    public Task<T> InvokeAsync<T>(Func<VirtMachine, T> action)
    {
        ArgumentNullException.ThrowIfNull(action);
        var tcs = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        if (_state is MachineRunState.Stopped or MachineRunState.Created)
        {
            tcs.SetException(new InvalidOperationException($"the machine is {_state}"));
            return tcs.Task;
        }
        _requests.Enqueue(() =>
        {
            try
            {
                tcs.SetResult(action(_machine));
            }
            catch (Exception e)
            {
                tcs.SetException(e);
            }
        });
        Poke();
        return tcs.Task;
    }

    /// <summary>Pauses the guest; completes once it has stopped executing.</summary>
    public Task PauseAsync() => InvokeAsync(_ =>
    {
        _paused = true;
        _state = MachineRunState.Paused;
        return true;
    });

    /// <summary>Lets a paused guest continue.</summary>
    public void Resume()
    {
        _paused = false;
        if (_state == MachineRunState.Paused)
            _state = MachineRunState.Running;
        Poke();
    }

    /// <summary>Stops the guest for good; completes when the thread has ended.</summary>
    public Task<ExitReason> StopAsync()
    {
        _stopping = true;
        Poke();
        return Completion;
    }

    private void Poke()
    {
        _machine.Interrupt();
        _signal.Release();
    }

    private void Loop()
    {
        var reason = ExitReason.Quit;
        try
        {
            while (true)
            {
                while (_requests.TryDequeue(out var request))
                    request();
                if (_stopping)
                    break;
                if (_paused)
                {
                    _state = MachineRunState.Paused;
                    _signal.Wait();
                    continue;
                }
                _state = MachineRunState.Running;
                reason = _machine.Run(0, TimeSpan.MaxValue);
                if (reason != ExitReason.Yielded)
                    break;
            }
            if (reason == ExitReason.Yielded)
                reason = ExitReason.Quit;
            _state = MachineRunState.Stopped;
            while (_requests.TryDequeue(out var request))
                request(); // late requests still see the final machine
            _completion.TrySetResult(reason);
        }
        catch (Exception e)
        {
            _state = MachineRunState.Stopped;
            _completion.TrySetException(e);
        }
    }

    /// <summary>Stops the guest (if running) and frees the machine.</summary>
    public void Dispose()
    {
        if (_state != MachineRunState.Created)
            StopAsync().Wait(TimeSpan.FromSeconds(30));
        _machine.Dispose();
        _signal.Dispose();
    }

    private sealed class ConsoleTap(MachineThread owner) : WriteOnlyStream
    {
        public override void Write(ReadOnlySpan<byte> buffer) => owner.ConsoleOutput?.Invoke(buffer.ToArray());

        public override void WriteByte(byte value) => owner.ConsoleOutput?.Invoke(new[] { value });
    }
}
