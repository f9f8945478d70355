// The repository's documentation pages, for tests that check the code against what they promise.
using System.Text.RegularExpressions;

namespace Tern.Cluster.Tests;

internal static partial class DocsPage
{
    public static string Read(string relative)
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Cluster.sln")))
            dir = dir.Parent;
        return File.ReadAllText(Path.Combine(dir?.FullName ?? throw new DirectoryNotFoundException("Cluster.sln not found above the test binaries"), relative));
    }

    // Names written as `code` in the table rows of a page's section (from its heading to the next).
    public static HashSet<string> TableNames(string page, string heading)
    {
        int start = page.IndexOf(heading, StringComparison.Ordinal);
        Assert.True(start >= 0, $"the page has no section '{heading}'");
        int end = page.IndexOf("\n#", start + heading.Length, StringComparison.Ordinal);
        var section = page[start..(end < 0 ? page.Length : end)];
        return section.Split('\n').Where(l => l.StartsWith('|'))
            .SelectMany(l => Code().Matches(l.Split('|')[1]).Select(m => m.Groups[1].Value)).ToHashSet();
    }

    [GeneratedRegex("`([^`]+)`")]
    private static partial Regex Code();
}
