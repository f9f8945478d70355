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
            ?? CheckImage(spec.Initrd, "initrd", required: false);
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
