// The checks a VM spec passes before anything is placed or persisted.
using System.Text.RegularExpressions;
using Tern.Cluster.Protocol;
using Tern.Machine;

namespace Tern.Cluster.State;

/// <summary>Validates user-supplied VM specs.</summary>
public static partial class VmSpecRules
{
    /// <summary>Largest number of harts a guest may have (the board's limit).</summary>
    public const int MaxHarts = 8;

    [GeneratedRegex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")]
    private static partial Regex NamePattern();

    /// <summary>Whether <paramref name="name"/> is a valid VM name (DNS-label style).</summary>
    public static bool IsValidName(string? name) => name is not null && NamePattern().IsMatch(name);

    /// <summary>The reason <paramref name="spec"/> is unacceptable, or null when it is fine.</summary>
    public static string? Check(VmSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (!IsValidName(spec.Name))
            return $"'{spec.Name}' is not a valid VM name: use 1-63 lower-case letters, digits and '-'";
        if (spec.MemoryBytes < VirtMachine.MinMemory || spec.MemoryBytes > VirtMachine.MaxMemory || spec.MemoryBytes % 4096 != 0)
            return $"memory {spec.MemoryBytes} bytes: must be a multiple of 4 KiB between {VirtMachine.MinMemory >> 20} MiB and {VirtMachine.MaxMemory >> 30} GiB";
        if (spec.Harts is < 1 or > MaxHarts)
            return $"{spec.Harts} harts: 1 to {MaxHarts} are supported";
        if (spec.Clock is not (null or "host" or "icount"))
            return $"clock '{spec.Clock}': use host or icount";
        return CheckImage(spec.Kernel, "kernel", required: true)
            ?? CheckImage(spec.Bios, "bios", required: false)
            ?? CheckImage(spec.Initrd, "initrd", required: false)
            ?? CheckDisks(spec.Disks);
    }

    /// <summary>How a disk that is a logical volume of the cluster's pool is written: lv:VG/LV.</summary>
    public const string LvDiskPrefix = "lv:";

    /// <summary>
    /// Whether <paramref name="disk"/> names a logical volume (lv:VG/LV, both names valid), with
    /// its VG and LV; false for a file disk and for a malformed lv: disk (see <see cref="CheckDisk"/>).
    /// </summary>
    public static bool TryParseLvDisk(string disk, out string vg, out string lv)
    {
        ArgumentNullException.ThrowIfNull(disk);
        vg = lv = "";
        if (!disk.StartsWith(LvDiskPrefix, StringComparison.Ordinal))
            return false;
        string[] parts = disk[LvDiskPrefix.Length..].Split('/');
        if (parts.Length != 2 || CheckStorageName(parts[0]) is not null || CheckStorageName(parts[1]) is not null)
            return false;
        (vg, lv) = (parts[0], parts[1]);
        return true;
    }

    /// <summary>Why <paramref name="disk"/> is not a usable disk (a file path, or lv:VG/LV), or null.</summary>
    public static string? CheckDisk(string? disk)
    {
        if (string.IsNullOrWhiteSpace(disk))
            return "an empty disk was given: use a file path or lv:VG/LV";
        if (!disk.StartsWith(LvDiskPrefix, StringComparison.Ordinal))
            return null;
        string[] parts = disk[LvDiskPrefix.Length..].Split('/');
        if (parts.Length != 2 || parts[0].Length == 0 || parts[1].Length == 0)
            return $"disk '{disk}': a logical volume is written lv:VG/LV, such as lv:vg0/disk1";
        return CheckStorageName(parts[0]) is { } vg ? $"disk '{disk}': volume group {vg}"
            : CheckStorageName(parts[1]) is { } lv ? $"disk '{disk}': logical volume {lv}"
            : null;
    }

    private static string? CheckDisks(IReadOnlyList<string>? disks)
    {
        if (disks is null)
            return null;
        if (disks.Count > MaxDisks)
            return $"{disks.Count} disks: at most {MaxDisks} are supported (one virtio slot each)";
        foreach (string disk in disks)
        {
            if (CheckDisk(disk) is { } bad)
                return bad;
        }
        return disks.GroupBy(d => d, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1) is { } twice
            ? $"disk '{twice.Key}' is given twice"
            : null;
    }

    /// <summary>Most disks a guest may have: one per virtio-mmio slot of the board.</summary>
    public const int MaxDisks = Board.VirtioSlots;

    private static string? CheckStorageName(string name)
    {
        try
        {
            Tern.Storage.VolumeGroup.ValidateName(name, "");
            return null;
        }
        catch (Tern.Storage.StorageException)
        {
            return $"'{name}' is not a valid name: use letters, digits and + _ . - (not starting with -), at most 127 characters";
        }
    }

    private static string? CheckImage(ImageRef? image, string what, bool required)
    {
        if (image is null)
            return required ? $"a {what} image is required" : null;
        bool hasPath = !string.IsNullOrEmpty(image.Path);
        bool hasBytes = image.Bytes is { Length: > 0 };
        if (hasPath == hasBytes)
            return $"the {what} image must be given either as a path or as bytes";
        if (hasBytes && image.Bytes!.Length > ImageRef.MaxInlineBytes)
            return $"the inline {what} image is {image.Bytes.Length} bytes; images over {ImageRef.MaxInlineBytes} bytes must be given as a path on the hosts";
        return null;
    }
}
