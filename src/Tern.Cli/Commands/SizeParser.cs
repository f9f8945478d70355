// Parses sizes the way QEMU's -m does: a number with an optional K, M, G or T suffix (binary units).
using System.Globalization;

namespace Tern.Cli.Commands;

/// <summary>Parses human-written sizes such as 256M or 1G.</summary>
public static class SizeParser
{
    /// <summary>Parses <paramref name="text"/>; a bare number means MiB, as in QEMU.</summary>
    public static bool TryParse(string text, out ulong bytes)
    {
        bytes = 0;
        if (string.IsNullOrWhiteSpace(text))
            return false;
        text = text.Trim();
        ulong unit = 1UL << 20;
        char last = char.ToUpperInvariant(text[^1]);
        if (char.IsLetter(last))
        {
            unit = last switch
            {
                'B' => 1,
                'K' => 1UL << 10,
                'M' => 1UL << 20,
                'G' => 1UL << 30,
                'T' => 1UL << 40,
                _ => 0,
            };
            if (unit == 0)
                return false;
            text = text[..^1];
        }
        if (!ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out ulong n) || n > ulong.MaxValue / unit)
            return false;
        bytes = n * unit;
        return true;
    }
}
