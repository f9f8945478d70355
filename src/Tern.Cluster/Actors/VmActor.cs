// One guest: owns its MachineThread (the vCPUs never run on a dispatcher thread), batches
// its console output to subscribers, and tells the hypervisor when the guest ends. It also
// carries live migration: a running guest migrates out over a dedicated TCP connection
// (MigrationSource), and an incoming one is received into an empty machine (MigrationTarget),
// after which console subscribers and the output so far move to the new host.
using System.Buffers;
using System.Diagnostics;
using Akka.Actor;
using Tern.Cluster.Migration;
using Tern.Cluster.Protocol;
using Tern.Cluster.Telemetry;
using Tern.Machine;
using Tern.Migration;

namespace Tern.Cluster.Actors;

/// <summary>Tells a VM actor to stop its guest (local only).</summary>
public sealed record StopGuestNow : INoSerializationVerificationNeeded
{
    /// <summary>The one instance.</summary>
    public static readonly StopGuestNow Instance = new();
}

/// <summary>A VM actor's report that its guest reset and booted again in the same generation (local only).</summary>
public sealed record GuestReset(string VmId, long Generation) : INoSerializationVerificationNeeded;

/// <summary>A VM actor's report that its guest ended (local only); <paramref name="Report"/> is false when the controller must not hear of it (it migrated out, or an incoming migration failed).</summary>
public sealed record GuestEnded(string VmId, long Generation, string Reason, bool Report = true) : INoSerializationVerificationNeeded;

/// <summary>Wraps one running guest.</summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Reliability", "CA1001", Justification = "An actor's resources end with it, in PostStop.")]
public sealed class VmActor : ReceiveActor, IWithTimers, IWithUnboundedStash
{
    /// <summary>Console output kept for late subscribers (the last 64 KiB).</summary>
    public const int BacklogBytes = 64 * 1024;

    // Output is gathered for this long before it is sent, so a chatty guest costs one message per batch, not per byte.
    private static readonly TimeSpan FlushDelay = TimeSpan.FromMilliseconds(20);

    // How long an incoming migration waits for the source to connect.
    private static readonly TimeSpan AcceptTimeout = TimeSpan.FromSeconds(30);

    private readonly string _vmId;
    private readonly long _generation;
    private readonly Func<MachineThread> _rebuild;
    private readonly Telemetry.GuestMeter? _meter;
    private MachineThread? _machine;
    private readonly HashSet<IActorRef> _subscribers = [];
    private readonly Queue<byte[]> _backlog = new();
    private readonly ArrayBufferWriter<byte> _pending = new();
    private int _backlogSize;
    private bool _stopRequested;
    private Outgoing? _outgoing;
    private Finished? _deferredEnd;
    private readonly CancellationTokenSource _incoming = new();
    private readonly ActorSystem _system = Context.System;
    private readonly List<IActorRef> _probes = [];

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
        Running();
    }

    /// <summary>Creates the actor of a guest arriving by live migration: it waits for the source on <paramref name="listener"/>, then runs what arrives.</summary>
    public VmActor(string vmId, long generation, VmSpec spec, MigrationListener listener, IActorRef controller, string hostName, TraceContext? trace, Telemetry.GuestMeter? meter,
        IReadOnlyDictionary<string, Machine.Devices.IBlockBackend>? volumes = null)
    {
        _meter = meter;
        _vmId = vmId;
        _generation = generation;
        _rebuild = () => GuestFactory.Build(spec, generation, 0, volumes);
        var self = Self;
        var parent = Context.Parent;
        ReceiveIncoming(spec, volumes, listener, trace, self).PipeTo(self, success: m => new Landed(m), failure: e => new IncomingFailed(e));
        Receive<Landed>(l =>
        {
            _machine = l.Machine;
            _meter?.Attach(l.Machine);
            _machine.Completion.PipeTo(self, success: r => new Finished(l.Machine, r, null), failure: e => new Finished(l.Machine, null, e));
            controller.Tell(new GuestMigratedIn(_vmId, _generation, hostName));
            parent.Tell(new GuestMigratedIn(_vmId, _generation, hostName));
            foreach (var probe in _probes)
                probe.Tell(new GuestStarted(_vmId, _generation, hostName));
            Become(Running);
            Stash.UnstashAll();
        });
        // Whether the guest runs here is known once the receive has ended: the answer waits for it.
        Receive<ProbeGuest>(_ => _probes.Add(Sender));
        Receive<IncomingFailed>(f =>
        {
            foreach (var probe in _probes)
                probe.Tell(new GuestExited(_vmId, _generation, $"the incoming migration failed on {hostName}"));
            parent.Tell(new GuestEnded(_vmId, _generation, $"incoming migration failed: {f.Error.GetBaseException().Message}", Report: false));
            Context.Stop(Self);
        });
        Receive<AbortMigration>(_ => _incoming.Cancel());
        Receive<ConsoleChunk>(c => Buffer(c));
        ReceiveAny(_ => Stash.Stash());
    }

    /// <inheritdoc/>
    public ITimerScheduler Timers { get; set; } = null!;

    /// <inheritdoc/>
    public IStash Stash { get; set; } = null!;

    /// <summary>Props for a guest.</summary>
    public static Props Props(string vmId, long generation, MachineThread machine, Func<MachineThread> rebuild, Telemetry.GuestMeter? meter = null) =>
        Akka.Actor.Props.Create(() => new VmActor(vmId, generation, machine, rebuild, meter));

    /// <summary>
    /// Props for a guest arriving by live migration through <paramref name="listener"/> (owned by the actor from now on);
    /// its volume disks are <paramref name="volumes"/> (owned by the hypervisor).
    /// </summary>
    public static Props Incoming(string vmId, long generation, VmSpec spec, MigrationListener listener, IActorRef controller, string hostName, TraceContext? trace, Telemetry.GuestMeter? meter = null,
        IReadOnlyDictionary<string, Machine.Devices.IBlockBackend>? volumes = null) =>
        Akka.Actor.Props.Create(() => new VmActor(vmId, generation, spec, listener, controller, hostName, trace, meter, volumes));

    private void Running()
    {
        Receive<ConsoleChunk>(c => Buffer(c));
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
        Receive<ConsoleHandover>(h => h.Generation == _generation, TakeConsole);
        Receive<Terminated>(t => _subscribers.Remove(t.ActorRef));
        // The UART queues input from any thread; the guest reads it between quanta.
        Receive<ConsoleInput>(i => i.Generation == _generation && i.Data.Length <= ConsoleInput.MaxBytes, i => _machine?.Machine.ConsoleInput(i.Data));
        Receive<ConsoleInput>(_ => { });
        Receive<StopGuestNow>(_ => StopMachine());
        Receive<AbortMigration>(_ => StopMachine());
        Receive<MigrateGuest>(MigrateOut);
        Receive<CancelGuestMigration>(c =>
        {
            if (_outgoing is { } o && o.Command.NewGeneration == c.NewGeneration)
                o.Cancel.Cancel();
        });
        Receive<OutgoingDone>(MigratedOut);
        // While a migration runs the guest's end waits for its outcome (a migration's own stop is not an end).
        Receive<Finished>(f => _outgoing is not null, f => _deferredEnd = f);
        // A reset boots the same spec afresh in the same generation, as a real machine's reset button does.
        Receive<Finished>(f => f.Reason == ExitReason.Reboot && !_stopRequested && f.Machine == _machine, _ =>
        {
            _machine!.Dispose();
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
                    ExitReason.PowerOff => $"powered off with code {_machine!.ExitCode}",
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
    protected override void PreStart()
    {
        if (_machine is { State: MachineRunState.Created })
            Launch();
    }

    private void Launch()
    {
        var self = Self;
        var machine = _machine!;
        machine.ConsoleOutput += bytes => self.Tell(new ConsoleChunk(bytes));
        _meter?.Attach(machine);
        machine.Start();
        machine.Completion.PipeTo(self, success: r => new Finished(machine, r, null), failure: e => new Finished(machine, null, e));
    }

    /// <inheritdoc/>
    protected override void PostStop()
    {
        _incoming.Cancel();
        _incoming.Dispose();
        _outgoing?.Cancel.Cancel();
        _meter?.Dispose();
        _machine?.Dispose();
    }

    private void StopMachine()
    {
        _stopRequested = true;
        var machine = _machine!;
        machine.StopAsync().PipeTo(Self, success: r => new Finished(machine, r, null), failure: e => new Finished(machine, null, e));
    }

    private void Buffer(ConsoleChunk c)
    {
        if (_pending.WrittenCount == 0)
            Timers.StartSingleTimer("flush", Flush.Instance, FlushDelay);
        _pending.Write(c.Data.Span);
        _meter?.ConsoleWritten(c.Data.Length);
    }

    // The incoming side: accept the source (token checked), receive into an empty machine of the
    // spec's shape, start it. Runs off the actor; the result comes back as Landed/IncomingFailed.
    private async Task<MachineThread> ReceiveIncoming(VmSpec spec, IReadOnlyDictionary<string, Machine.Devices.IBlockBackend>? volumes, MigrationListener listener, TraceContext? trace, IActorRef self)
    {
        using var span = TernTracing.Start("migration.receive", trace, ActivityKind.Server);
        span?.SetTag("tern.vm", _vmId);
        span?.SetTag("tern.generation", _generation);
        try
        {
            using (listener)
            {
                using var accept = CancellationTokenSource.CreateLinkedTokenSource(_incoming.Token);
                accept.CancelAfter(AcceptTimeout);
                var client = await listener.AcceptAsync(accept.Token).ConfigureAwait(false);
                try
                {
                    var machine = await MigrationTarget.ReceiveAsync(client.GetStream(), (shape, console) => GuestFactory.BuildEmpty(spec, shape, console, 0, volumes), $"{_vmId}.{_generation}",
                        beforeStart: t => t.ConsoleOutput += bytes => self.Tell(new ConsoleChunk(bytes)), _incoming.Token).ConfigureAwait(false);
                    _ = CloseWhenSourceDoes(client);
                    return machine;
                }
                catch
                {
                    client.Dispose();
                    throw;
                }
            }
        }
        catch (Exception e)
        {
            span?.SetStatus(ActivityStatusCode.Error, e.Message);
            throw;
        }
    }

    // The source closes after reading the acknowledgement; closing first could reset the connection under it.
    private static async Task CloseWhenSourceDoes(System.Net.Sockets.TcpClient client)
    {
        using (client)
        {
            try
            {
                using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                var buffer = new byte[256];
                while (await client.GetStream().ReadAsync(buffer, limit.Token).ConfigureAwait(false) > 0)
                {
                }
            }
            catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException)
            {
                // gone or silent: close anyway
            }
        }
    }

    private void MigrateOut(MigrateGuest command)
    {
        if (command.Generation != _generation || _machine is null || _outgoing is not null)
        {
            Sender.Tell(new MigrationFailed(_vmId, command.NewGeneration, _outgoing is not null
                ? "another migration of this guest is running"
                : $"generation {command.Generation} is not the one running here ({_generation})"));
            return;
        }
        var outgoing = new Outgoing(command, Sender, new CancellationTokenSource());
        _outgoing = outgoing;
        var self = Self;
        RunSource(outgoing, _machine).PipeTo(self, success: s => new OutgoingDone(outgoing, s, null), failure: e => new OutgoingDone(outgoing, null, e));
    }

    private async Task<MigrationStats> RunSource(Outgoing outgoing, MachineThread machine)
    {
        var command = outgoing.Command;
        using var span = TernTracing.Start("migration.source", command.Trace, ActivityKind.Client);
        span?.SetTag("tern.vm", _vmId);
        span?.SetTag("tern.generation", command.Generation);
        span?.SetTag("tern.target", command.TargetHost);
        var relay = new ProgressRelay(_vmId, command.NewGeneration, outgoing.Controller, span?.Context ?? default);
        var system = _system;
        try
        {
            using var client = await MigrationListener.ConnectAsync(command.Endpoint, command.Token, outgoing.Cancel.Token).ConfigureAwait(false);
            var options = new MigrationOptions
            {
                DowntimeLimit = TimeSpan.FromMilliseconds(command.Settings.DowntimeLimitMs),
                MaxBandwidth = command.Settings.MaxBandwidthBytesPerSecond,
                AutoConverge = command.Settings.AutoConverge,
                PostCopy = command.Settings.PostCopy,
                PostCopyAtOnce = command.Settings.PostCopyAtOnce,
                Progress = relay,
            };
            var source = new MigrationSource(machine, options);
            MigrationStats stats;
            try
            {
                stats = await source.MigrateAsync(client.GetStream(), outgoing.Cancel.Token).ConfigureAwait(false);
            }
            catch (MigrationInDoubtException doubt)
            {
                // The connection broke after 'go': only the target knows whether it runs the guest.
                // Its hypervisor answers once its receive has ended either way.
                bool targetRuns = await TargetRuns(command, system).ConfigureAwait(false);
                await source.ResolveInDoubtAsync(targetRuns).ConfigureAwait(false);
                if (!targetRuns)
                    throw new MigrationFailedException($"migration failed, the guest keeps running on the source: {doubt.Message}; the target does not run it", doubt);
                stats = new MigrationStats { Status = "completed" };
            }
            relay.Finish(stats);
            span?.SetTag("tern.downtime_ms", stats.DowntimeMs);
            return stats;
        }
        catch (Exception e)
        {
            span?.SetStatus(ActivityStatusCode.Error, e.Message);
            throw;
        }
    }

    private static async Task<bool> TargetRuns(MigrateGuest command, ActorSystem system)
    {
        try
        {
            var answer = await system.ActorSelection(ActorNames.HypervisorPath(command.TargetAddress))
                .Ask<object>(new ProbeGuest(command.VmId, command.NewGeneration), TimeSpan.FromSeconds(45)).ConfigureAwait(false);
            return answer is GuestStarted;
        }
        catch (AskTimeoutException)
        {
            return false; // the target is gone: it cannot be running the guest
        }
    }

    private void MigratedOut(OutgoingDone done)
    {
        if (done.Outgoing != _outgoing)
            return;
        _outgoing = null;
        var command = done.Outgoing.Command;
        if (done.Stats is not { } stats)
        {
            var error = done.Error!.GetBaseException();
            string reason = done.Outgoing.Cancel.IsCancellationRequested
                ? "cancelled; the guest keeps running on the source"
                : error is MigrationFailedException ? error.Message : $"migration failed, the guest keeps running on the source: {error.Message}";
            done.Outgoing.Controller.Tell(new MigrationFailed(_vmId, command.NewGeneration, reason));
            if (_deferredEnd is { } end)
            {
                _deferredEnd = null;
                Self.Tell(end);
            }
            return;
        }
        // Committed: the target runs the guest. Everything printed before the pause goes with it.
        FlushConsole();
        var subscribers = _subscribers.Select(s => Akka.Serialization.Serialization.SerializedActorPath(s)).ToList();
        Context.ActorSelection(ActorNames.HypervisorPath(command.TargetAddress))
            .Tell(new ConsoleHandover(_vmId, command.NewGeneration, _backlog.SelectMany(b => b).ToArray(), subscribers));
        done.Outgoing.Controller.Tell(new MigrationCompleted(_vmId, command.NewGeneration, Figures(stats)));
        _meter?.Exited("migrated");
        Context.Parent.Tell(new GuestEnded(_vmId, _generation, $"migrated to {command.TargetHost}", Report: false));
        Context.Stop(Self);
    }

    // The source's output so far becomes the start of this guest's backlog, and its subscribers
    // receive what this host printed before they arrived.
    private void TakeConsole(ConsoleHandover handover)
    {
        FlushConsole();
        byte[] own = _backlog.SelectMany(b => b).ToArray();
        _backlog.Clear();
        _backlogSize = 0;
        Append(handover.Backlog);
        Append(own);
        var provider = ((ExtendedActorSystem)Context.System).Provider;
        foreach (var path in handover.Subscribers)
        {
            var subscriber = provider.ResolveActorRef(path);
            if (subscriber.IsNobody() || !_subscribers.Add(subscriber))
                continue;
            Context.Watch(subscriber);
            if (own.Length > 0)
                subscriber.Tell(new ConsoleOutput(_vmId, _generation, own));
        }
    }

    private static MigrationFigures Figures(MigrationStats s) => new(
        s.TotalTimeMs, s.SetupTimeMs, s.DowntimeMs, s.Rounds, s.BytesSent, s.PagesZero, s.PagesDelta, s.PagesCompressed, s.PagesRaw,
        s.DirtyPagesRate, s.BandwidthMiBps, 0, s.PauseMs, s.FinalCopyMs, s.AckWaitMs, s.ThrottlePercent, s.PostCopyPages,
        new MigrationBreakdown(s.PauseMs, s.StateCaptureMs, s.FinalCopyMs, s.FinalPages, s.ReadyWaitMs, s.TargetApplyMs, s.TargetLoadMs,
            s.AckWaitMs - s.ReadyWaitMs, s.EncodeMs, s.WriteMs, s.RoundWaitMs));

    private void FlushConsole()
    {
        if (_pending.WrittenCount == 0)
            return;
        var data = _pending.WrittenSpan.ToArray();
        _pending.ResetWrittenCount();
        Append(data);
        var message = new ConsoleOutput(_vmId, _generation, data);
        foreach (var s in _subscribers)
            s.Tell(message);
    }

    private void Append(byte[] data)
    {
        if (data.Length == 0)
            return;
        _backlog.Enqueue(data);
        _backlogSize += data.Length;
        while (_backlogSize > BacklogBytes && _backlog.Count > 1)
            _backlogSize -= _backlog.Dequeue().Length;
    }

    // Relays MigrationOptions.Progress to the controller and records a span per pre-copy round
    // and one for the switchover, all children of the source's span.
    private sealed class ProgressRelay(string vmId, long generation, IActorRef controller, ActivityContext parent) : IProgress<MigrationProgress>
    {
        private DateTime _since = DateTime.UtcNow;
        private DateTime? _switchover;

        public void Report(MigrationProgress value)
        {
            var now = DateTime.UtcNow;
            if (value.Phase == "precopy")
            {
                MigrationTelemetry.Span($"migration.round", parent, _since, ("tern.round", value.Round), ("tern.bytes_sent", value.BytesSent), ("tern.remaining_bytes", value.RemainingBytes));
                _since = now;
            }
            else if (value.Phase == "switchover")
            {
                _switchover = now;
            }
            controller.Tell(new MigrationProgressed(vmId, generation, new MigrationProgressView(
                value.Phase, value.Round, value.RemainingBytes, value.DirtyPagesRate, value.BandwidthMiBps, value.ExpectedDowntimeMs, value.BytesSent, value.ElapsedMs, value.ThrottlePercent)));
        }

        public void Finish(MigrationStats stats)
        {
            if (_switchover is { } start)
                MigrationTelemetry.Span("migration.switchover", parent, start, ("tern.downtime_ms", stats.DowntimeMs), ("tern.rounds", stats.Rounds));
        }
    }

    private sealed record Outgoing(MigrateGuest Command, IActorRef Controller, CancellationTokenSource Cancel);

    private sealed record OutgoingDone(Outgoing Outgoing, MigrationStats? Stats, Exception? Error) : INoSerializationVerificationNeeded;

    private sealed record Landed(MachineThread Machine) : INoSerializationVerificationNeeded;

    private sealed record IncomingFailed(Exception Error) : INoSerializationVerificationNeeded;

    private sealed record ConsoleChunk(ReadOnlyMemory<byte> Data) : INoSerializationVerificationNeeded;

    private sealed record Finished(MachineThread Machine, ExitReason? Reason, Exception? Error) : INoSerializationVerificationNeeded;

    private sealed class Flush : INoSerializationVerificationNeeded
    {
        public static readonly Flush Instance = new();
    }
}
