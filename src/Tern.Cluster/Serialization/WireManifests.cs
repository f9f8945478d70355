// The fixed table of wire names. A manifest is part of the protocol and of the journal:
// never rename or reuse one; add new types with new names.
using System.Collections.Frozen;
using Tern.Cluster.Protocol;

namespace Tern.Cluster.Serialization;

/// <summary>Stable manifest names of every <see cref="ITernWireMessage"/> type.</summary>
public static class WireManifests
{
    private static readonly (string Name, Type Type)[] Table =
    [
        ("vm.create", typeof(CreateVm)),
        ("vm.start", typeof(StartVm)),
        ("vm.stop", typeof(StopVm)),
        ("vm.delete", typeof(DeleteVm)),
        ("vm.get", typeof(GetVm)),
        ("vm.console.attach", typeof(AttachConsole)),
        ("vm.console.output", typeof(ConsoleOutput)),
        ("vm.console.ended", typeof(ConsoleEnded)),
        ("vm.console.attached", typeof(ConsoleAttached)),
        ("vm.console.input", typeof(ConsoleInput)),
        ("vm.status", typeof(VmStatus)),
        ("vm.rejected", typeof(CommandRejected)),
        ("host.report", typeof(HostReport)),
        ("host.list.get", typeof(GetHosts)),
        ("host.list", typeof(HostList)),
        ("sched.place", typeof(PlaceVm)),
        ("sched.placed", typeof(VmPlaced)),
        ("sched.refused", typeof(PlacementRefused)),
        ("guest.start", typeof(StartGuest)),
        ("guest.started", typeof(GuestStarted)),
        ("guest.refused", typeof(GuestRefused)),
        ("guest.stop", typeof(StopGuest)),
        ("guest.exited", typeof(GuestExited)),
        ("guest.probe", typeof(ProbeGuest)),
        ("evt.vm.created", typeof(VmCreated)),
        ("evt.vm.placed", typeof(VmPlacedOnHost)),
        ("evt.vm.running", typeof(VmRunning)),
        ("evt.vm.stop-requested", typeof(VmStopRequested)),
        ("evt.vm.stopped", typeof(VmStopped)),
        ("evt.vm.failed", typeof(VmFailed)),
        ("evt.vm.lost", typeof(VmLost)),
        ("evt.vm.deleted", typeof(VmDeleted)),
        ("events.event", typeof(TernEvent)),
        ("vm.migrate", typeof(MigrateVm)),
        ("vm.migrate.cancel", typeof(CancelMigration)),
        ("vm.migrate.get", typeof(GetMigration)),
        ("vm.migrate.status", typeof(MigrationStatus)),
        ("mig.prepare", typeof(PrepareMigration)),
        ("mig.prepared", typeof(MigrationPrepared)),
        ("mig.refused", typeof(MigrationRefused)),
        ("mig.run", typeof(MigrateGuest)),
        ("mig.progress", typeof(MigrationProgressed)),
        ("mig.completed", typeof(MigrationCompleted)),
        ("mig.failed", typeof(MigrationFailed)),
        ("mig.cancel", typeof(CancelGuestMigration)),
        ("mig.landed", typeof(GuestMigratedIn)),
        ("mig.abort", typeof(AbortMigration)),
        ("mig.console", typeof(ConsoleHandover)),
        ("host.drain", typeof(SetHostDraining)),
        ("evt.vm.migration-started", typeof(VmMigrationStarted)),
        ("evt.vm.migrated", typeof(VmMigrated)),
        ("evt.vm.migration-aborted", typeof(VmMigrationAborted)),
        ("storage.server.get", typeof(GetExtentServer)),
        ("storage.server", typeof(ExtentServerInfo)),
        ("storage.pv.create", typeof(CreatePhysicalVolume)),
        ("storage.pv.created", typeof(PhysicalVolumeCreated)),
        ("storage.pv.forget", typeof(ForgetPhysicalVolume)),
        ("storage.pv.forgotten", typeof(PhysicalVolumeForgotten)),
        ("storage.refused", typeof(StorageRefused)),
        ("storage.lv.fence", typeof(FenceLv)),
        ("storage.lv.fenced", typeof(LvFenced)),
        ("storage.verb.run", typeof(RunStorageVerb)),
        ("storage.verb.result", typeof(StorageVerbResult)),
        ("storage.verb.accepted", typeof(StorageVerbAccepted)),
        ("storage.verb.await", typeof(AwaitStorageVerb)),
        ("storage.verb.pending", typeof(StorageVerbPending)),
        ("storage.verb.unknown", typeof(StorageVerbUnknown)),
        ("storage.vg.propose", typeof(ProposeVgMetadata)),
        ("storage.vg.committed", typeof(VgMetadataCommitted)),
        ("storage.vg.conflict", typeof(VgMetadataConflict)),
        ("storage.vg.changed", typeof(VgMetadataChanged)),
        ("storage.lv.open", typeof(OpenLvForGuest)),
        ("storage.lv.granted", typeof(LvGranted)),
        ("storage.lv.close", typeof(CloseLvForGuest)),
        ("storage.lv.closed", typeof(LvClosed)),
        ("storage.lv.repair-guest", typeof(RepairGuestLv)),
    ];

    /// <summary>Manifest name → type.</summary>
    public static readonly FrozenDictionary<string, Type> ByName = Table.ToFrozenDictionary(e => e.Name, e => e.Type, StringComparer.Ordinal);

    /// <summary>Type → manifest name.</summary>
    public static readonly FrozenDictionary<Type, string> ByType = Table.ToFrozenDictionary(e => e.Type, e => e.Name);
}
