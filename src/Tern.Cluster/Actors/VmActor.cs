// One guest: owns its MachineThread (the vCPUs never run on a dispatcher thread), batches
// its console output to subscribers, and tells the hypervisor when the guest ends.
using System.Buffers;
using Akka.Actor;
using Tern.Cluster.Protocol;
using Tern.Machine;

namespace Tern.Cluster.Actors;

/// <summary>Tells a VM actor to stop its guest (local only).</summary>
public sealed record StopGuestNow : INoSerializationVerificationNeeded
{
    /// <summary>The one instance.</summary>
    public static readonly StopGuestNow Instance = new();
}

/// <summary>A VM actor's report that its guest reset and booted again in the same generation (local only).</summary>
public sealed record GuestReset(string VmId, long Generation) : INoSerializationVerificationNeeded;

/// <summary>A VM actor's report that its guest ended (local only).</summary>
public sealed record GuestEnded(string VmId, long Generation, string Reason) : INoSerializationVerificationNeeded;

/// <summary>Wraps one running guest.</summary>
public sealed class VmActor : ReceiveActor, IWithTimers
{
    /// <summary>Console output kept for late subscribers (the last 64 KiB).</summary>
    public const int BacklogBytes = 64 * 1024;

    // Output is gathered for this long before it is sent, so a chatty guest costs one message per batch, not per byte.
    private static readonly TimeSpan FlushDelay = TimeSpan.FromMilliseconds(20);

    private readonly string _vmId;
    private readonly long _generation;
    private readonly Func<MachineThread> _rebuild;
    private readonly Telemetry.GuestMeter? _meter;
    private MachineThread _machine;
    private readonly HashSet<IActorRef> _subscribers = [];
    private readonly Queue<byte[]> _backlog = new();
    private readonly ArrayBufferWriter<byte> _pending = new();
    private int _backlogSize;
    private bool _stopRequested;

    /// <summary>
    /// Creates the actor for a built (not started) machine; <paramref name="rebuild"/> makes a fresh
    /// one when the guest resets; <paramref name="meter"/> (disposed when the actor stops) reports its figures.
    /// </summary>
    public VmActor(string vmId, long generation, MachineThread machine, Func<MachineThread> rebuild, Telemetry.GuestMeter? meter = null)
    {
        _meter = meter;
        _vmId = vmId;
        _generation = generation;
        _machine = machine;
        _rebuild = rebuild;
        Receive<ConsoleChunk>(c =>
        {
            if (_pending.WrittenCount == 0)
                Timers.StartSingleTimer("flush", Flush.Instance, FlushDelay);
            _pending.Write(c.Data.Span);
            _meter?.ConsoleWritten(c.Data.Length);
        });
        Receive<Flush>(_ => FlushConsole());
        Receive<AttachConsole>(_ =>
        {
            FlushConsole(); // before subscribing, so the pending output reaches the newcomer once, in the backlog
            if (_subscribers.Add(Sender))
                Context.Watch(Sender);
            Sender.Tell(new ConsoleAttached(_vmId, _generation));
            if (_backlog.Count > 0)
                Sender.Tell(new ConsoleOutput(_vmId, _generation, _backlog.SelectMany(b => b).ToArray()));
        });
        Receive<Terminated>(t => _subscribers.Remove(t.ActorRef));
        // The UART queues input from any thread; the guest reads it between quanta.
        Receive<ConsoleInput>(i => i.Generation == _generation && i.Data.Length <= ConsoleInput.MaxBytes, i => _machine.Machine.ConsoleInput(i.Data));
        Receive<ConsoleInput>(_ => { });
        Receive<StopGuestNow>(_ =>
        {
            _stopRequested = true;
            var machine = _machine;
            machine.StopAsync().PipeTo(Self, success: r => new Finished(machine, r, null), failure: e => new Finished(machine, null, e));
        });
        // A reset boots the same spec afresh in the same generation, as a real machine's reset button does.
        Receive<Finished>(f => f.Reason == ExitReason.Reboot && !_stopRequested && f.Machine == _machine, _ =>
        {
            _machine.Dispose();
            try
            {
                _machine = _rebuild();
            }
            catch (Exception e) when (e is Machine.Boot.InvalidImageException or IOException or ArgumentException or UnauthorizedAccessException)
            {
                _meter?.Exited("crashed");
                Context.Parent.Tell(new GuestEnded(_vmId, _generation, $"the guest reset and could not boot again: {e.Message}"));
                Context.Stop(Self);
                return;
            }
            Launch();
            Context.Parent.Tell(new GuestReset(_vmId, _generation));
        });
        Receive<Finished>(f => f.Machine != _machine, _ => { });
        Receive<Finished>(f =>
        {
            FlushConsole();
            string reason = f.Error is not null ? $"crashed: {f.Error.GetBaseException().Message}"
                : _stopRequested ? "stopped by the host"
                : f.Reason switch
                {
                    ExitReason.PowerOff => $"powered off with code {_machine.ExitCode}",
                    var r => r?.ToString().ToLowerInvariant() ?? "ended",
                };
            _meter?.Exited(f.Error is not null ? "crashed" : _stopRequested ? "stopped" : f.Reason == ExitReason.PowerOff ? "powered-off" : "other");
            Context.Parent.Tell(new GuestEnded(_vmId, _generation, reason));
            var ended = new ConsoleEnded(_vmId, _generation, reason);
            foreach (var s in _subscribers)
                s.Tell(ended);
            Context.Stop(Self);
        });
    }

    /// <inheritdoc/>
    public ITimerScheduler Timers { get; set; } = null!;

    /// <summary>Props for a guest.</summary>
    public static Props Props(string vmId, long generation, MachineThread machine, Func<MachineThread> rebuild, Telemetry.GuestMeter? meter = null) =>
        Akka.Actor.Props.Create(() => new VmActor(vmId, generation, machine, rebuild, meter));

    /// <inheritdoc/>
    protected override void PreStart() => Launch();

    private void Launch()
    {
        var self = Self;
        var machine = _machine;
        machine.ConsoleOutput += bytes => self.Tell(new ConsoleChunk(bytes));
        _meter?.Attach(machine);
        machine.Start();
        machine.Completion.PipeTo(self, success: r => new Finished(machine, r, null), failure: e => new Finished(machine, null, e));
    }

    /// <inheritdoc/>
    protected override void PostStop()
    {
        _meter?.Dispose();
        _machine.Dispose();
    }

    private void FlushConsole()
    {
        if (_pending.WrittenCount == 0)
            return;
        var data = _pending.WrittenSpan.ToArray();
        _pending.ResetWrittenCount();
        _backlog.Enqueue(data);
        _backlogSize += data.Length;
        while (_backlogSize > BacklogBytes && _backlog.Count > 1)
            _backlogSize -= _backlog.Dequeue().Length;
        var message = new ConsoleOutput(_vmId, _generation, data);
        foreach (var s in _subscribers)
            s.Tell(message);
    }

    private sealed record ConsoleChunk(ReadOnlyMemory<byte> Data) : INoSerializationVerificationNeeded;

    private sealed record Finished(MachineThread Machine, ExitReason? Reason, Exception? Error) : INoSerializationVerificationNeeded;

    private sealed class Flush : INoSerializationVerificationNeeded
    {
        public static readonly Flush Instance = new();
    }
}
