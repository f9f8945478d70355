// Turns a VM spec into a booted machine on its own thread, ready to start.
using Tern.Cluster.Protocol;
using Tern.Machine;
using Tern.Machine.Boot;
using Tern.Machine.Devices;
using Tern.Machine.Devices.Virtio;

namespace Tern.Cluster.Actors;

/// <summary>Builds machines from specs.</summary>
public static class GuestFactory
{
    /// <summary>
    /// Loads the spec's images, builds and boots the machine, and wraps it in a
    /// <see cref="MachineThread"/> (not yet started). Throws <see cref="InvalidImageException"/>,
    /// <see cref="IOException"/> or <see cref="ArgumentException"/> for a spec this host cannot run.
    /// One disk operation in <paramref name="ioSampleEvery"/> is traced (0: none); all are counted.
    /// Disks named lv:VG/LV come from <paramref name="volumes"/> (opened by the hypervisor, which
    /// keeps them across guest resets and closes them when the guest ends).
    /// </summary>
    public static MachineThread Build(VmSpec spec, long generation, int ioSampleEvery = 0, IReadOnlyDictionary<string, IBlockBackend>? volumes = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var images = new BootImages
        {
            Kernel = Load(spec.Kernel),
            Firmware = spec.Bios is null ? null : Load(spec.Bios),
            Initrd = spec.Initrd is null ? null : Load(spec.Initrd),
            BootArgs = spec.Append,
        };
        return new MachineThread(console =>
        {
            var machine = Empty(spec, console, ioSampleEvery, volumes);
            try
            {
                machine.Boot(images);
                return machine;
            }
            catch
            {
                machine.Dispose();
                throw;
            }
        }, $"{spec.Name}.{generation}");
    }

    /// <summary>
    /// The empty machine a migration target fills: the spec's RAM, harts, clock and disks, not
    /// booted. Throws <see cref="ArgumentException"/> when the sender's <paramref name="shape"/>
    /// does not match the spec, <see cref="IOException"/> when a disk cannot be opened here.
    /// Volume disks come from <paramref name="volumes"/> (the target's are <see cref="DeferredGuestDisk"/>s).
    /// </summary>
    public static VirtMachine BuildEmpty(VmSpec spec, Machine.Snapshot.MachineShape shape, Stream console, int ioSampleEvery = 0, IReadOnlyDictionary<string, IBlockBackend>? volumes = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(shape);
        if (shape.MemoryBytes != spec.MemoryBytes || shape.Harts != spec.Harts || shape.Clock != ClockOf(spec))
            throw new ArgumentException($"the source's machine ({shape.MemoryBytes >> 20} MiB, {shape.Harts} harts, {shape.Clock} clock) does not match the VM's spec ({spec.MemoryBytes >> 20} MiB, {spec.Harts} harts, {ClockOf(spec)} clock)");
        return Empty(spec, console, ioSampleEvery, volumes);
    }

    private static VirtMachine Empty(VmSpec spec, Stream console, int ioSampleEvery, IReadOnlyDictionary<string, IBlockBackend>? volumes)
    {
        var machine = new VirtMachine(new MachineOptions { MemoryBytes = spec.MemoryBytes, Harts = spec.Harts, Clock = ClockOf(spec), Console = console });
        try
        {
            int slot = 0;
            foreach (var disk in spec.Disks)
            {
                if (GuestDiskNames.IsVolume(disk))
                {
                    // Not owned by the machine: a reset rebuilds the machine on the same open volume.
                    var volume = volumes?.GetValueOrDefault(disk) ?? throw new IOException($"disk {disk} is a logical volume and was not opened on this host");
                    machine.AttachVirtio(slot++, new VirtioBlk(new ObservedBlockBackend(volume, spec.Name, ioSampleEvery)), 2);
                    continue;
                }
                var backend = new FileBlockBackend(disk);
                machine.AttachVirtio(slot++, new VirtioBlk(new ObservedBlockBackend(backend, spec.Name, ioSampleEvery)), 2, backend);
            }
            return machine;
        }
        catch
        {
            machine.Dispose();
            throw;
        }
    }

    private static ClockMode ClockOf(VmSpec spec) => spec.Icount ? ClockMode.Icount : ClockMode.Host;

    private static byte[] Load(ImageRef image) => image.Bytes ?? File.ReadAllBytes(image.Path!);
}
