// Human-readable sizes, in LVM's style: two decimals and a lower-case binary unit.
using System.Globalization;

namespace Tern.Storage;

/// <summary>Formats byte counts for messages and listings.</summary>
public static class Sizes
{
    /// <summary>Formats a size as LVM does: 512.00m, 2.00g; below 1 KiB, a byte count.</summary>
    public static string Format(long bytes)
    {
        string[] units = ["b", "k", "m", "g", "t", "p"];
        double v = bytes;
        int u = 0;
        while (Math.Abs(v) >= 1024 && u < units.Length - 1)
        {
            v /= 1024;
            u++;
        }
        return u == 0 ? bytes.ToString(CultureInfo.InvariantCulture) + "b" : v.ToString("F2", CultureInfo.InvariantCulture) + units[u];
    }
}
