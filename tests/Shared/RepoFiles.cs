// Locates files of the repository (committed guest images) and host tools the tests need.
namespace Tern.Tests.Shared;

internal static class RepoFiles
{
    public static string Root { get; } = FindRoot();

    public static string Guest(string relative) => Path.Combine(Root, "src", "guests", "bin", relative);

    /// <summary>A file installed by a Debian package; fails the test with the package to install when missing.</summary>
    public static string HostFile(string path, string package)
    {
        Assert.True(File.Exists(path), $"{path} is missing: install Debian's '{package}' package (.ci/run does)");
        return path;
    }

    public const string FwJump = "/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_jump.elf";
    public const string FwDynamic = "/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.elf";

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Cluster.sln")))
                return dir.FullName;
        }
        throw new InvalidOperationException("Cluster.sln not found above the test directory");
    }
}
