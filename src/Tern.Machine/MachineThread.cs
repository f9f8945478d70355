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
    private volatile int _throttle;

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

    /// <summary>
    /// Starts the thread with the guest paused, so that a later <see cref="Resume"/> starts it
    /// without the cost of creating a thread (a migration target does this before switchover).
    /// Until then the machine may still be filled directly, as before <see cref="Start"/>.
    /// </summary>
    public void StartPaused()
    {
        if (_state != MachineRunState.Created)
            throw new InvalidOperationException($"the machine thread is {_state}, not Created");
        _paused = true;
        _state = MachineRunState.Paused;
        _thread.Start();
    }

    /// <summary>
    /// Percent of the time the guest is kept from running (0 to 99; auto-converge raises it while
    /// a migration cannot keep up with the guest's writes). The guest runs a slice, then sleeps
    /// in proportion: at 20 it runs 80% of the time.
    /// </summary>
    public int ThrottlePercent
    {
        get => _throttle;
        set
        {
            if (value is < 0 or > 99)
                throw new ArgumentOutOfRangeException(nameof(value), value, "the throttle is 0 to 99 percent");
            _throttle = value;
            Poke();
        }
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

    /// <summary>
    /// Pauses the guest and, in the same stop between quanta, runs <paramref name="action"/> on the
    /// machine's thread (a migration's switchover: one hop instead of a pause and a request).
    /// </summary>
    public Task<T> PauseAsync<T>(Func<VirtMachine, T> action)
    {
        ArgumentNullException.ThrowIfNull(action);
        return InvokeAsync(m =>
        {
            _paused = true;
            _state = MachineRunState.Paused;
            return action(m);
        });
    }

    /// <summary>Lets a paused guest continue.</summary>
    public void Resume()
    {
        _paused = false;
        if (_state == MachineRunState.Paused)
            _state = MachineRunState.Running;
        Poke();
    }

    /// <summary>
    /// Runs <paramref name="gate"/> on the machine's thread while the guest is paused (it may block,
    /// e.g. waiting for a migration's go) and resumes the guest right there, before it executes
    /// again, if the gate returns true. Completes with the gate's answer, or faulted with its
    /// exception (the guest stays paused). A migration target waits for go this way: the thread
    /// that wakes on go is the one that runs the guest, with no hop to another thread.
    /// </summary>
    public Task<bool> ResumeWhen(Func<VirtMachine, bool> gate)
    {
        ArgumentNullException.ThrowIfNull(gate);
        return InvokeAsync(m =>
        {
            if (!gate(m))
                return false;
            _paused = false;
            _state = MachineRunState.Running;
            return true;
        });
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
                int throttle = _throttle;
                if (throttle == 0)
                {
                    reason = _machine.Run(0, TimeSpan.MaxValue);
                }
                else
                {
                    long start = System.Diagnostics.Stopwatch.GetTimestamp();
                    reason = _machine.Run(0, ThrottleSlice);
                    if (reason == ExitReason.Timeout)
                        reason = ExitReason.Yielded;
                    if (reason == ExitReason.Yielded)
                        ThrottleSleep(System.Diagnostics.Stopwatch.GetElapsedTime(start), throttle);
                }
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

    // A throttled guest runs this long, then sleeps for its share of the period.
    private static readonly TimeSpan ThrottleSlice = TimeSpan.FromMilliseconds(2);

    // Sleeps ran × p / (100 − p), so the guest gets (100 − p)% of the time whatever the slice
    // overshoot; requests (pause, stop, invoke) end the sleep early.
    private void ThrottleSleep(TimeSpan ran, int percent)
    {
        while (_signal.CurrentCount > 0)
            _signal.Wait(0); // stale pokes from requests already served
        if (!_requests.IsEmpty || _stopping || _paused)
            return;
        // Requests served meanwhile (a migration harvesting its dirty log) do not end the sleep.
        long until = System.Diagnostics.Stopwatch.GetTimestamp() + (long)((ran * percent / (100 - percent)).TotalSeconds * System.Diagnostics.Stopwatch.Frequency);
        while (!_stopping && !_paused && _throttle > 0)
        {
            var left = System.Diagnostics.Stopwatch.GetElapsedTime(System.Diagnostics.Stopwatch.GetTimestamp(), until);
            if (left <= TimeSpan.Zero || !_signal.Wait(left))
                return;
            while (_requests.TryDequeue(out var request))
                request();
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
