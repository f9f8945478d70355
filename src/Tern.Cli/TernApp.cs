// The composition root of the command-line verbs, callable in-process by tests.
using System.CommandLine;
using Tern.Cli.Commands;

namespace Tern.Cli;

/// <summary>Builds the `tern` command tree.</summary>
public static class TernApp
{
    /// <summary>The root command with every verb.</summary>
    public static RootCommand Build()
    {
        var root = new RootCommand("Tern: a distributed RISC-V virtual-machine cluster.");
        root.Subcommands.Add(RunCommand.Create());
        root.Subcommands.Add(FailoverBenchCommand.WithFailoverBench(ExtentBenchCommand.WithExtentBench(TransportBenchCommand.WithTransportBench(ClusterBenchCommand.WithClusterBench(ResyncBenchCommand.WithResyncBench(StorageCommands.WithStorageBench(BenchCommand.Create())))))));
        root.Subcommands.Add(StorageCommands.Pv());
        root.Subcommands.Add(StorageCommands.Vg());
        root.Subcommands.Add(StorageCommands.Lv());
        root.Subcommands.Add(StorageCommands.PvMove());
        root.Subcommands.Add(NodeCommand.Create());
        root.Subcommands.Add(ClusterClientCommands.Vm());
        root.Subcommands.Add(ClusterClientCommands.Host());
        root.Subcommands.Add(ClusterClientCommands.Events());
        root.Subcommands.Add(ClusterCommands.Create());
        root.Subcommands.Add(DemoCommand.Create());
        return root;
    }

    /// <summary>Runs `tern` with <paramref name="args"/>, writing its own messages to the given writers.</summary>
    public static int Invoke(string[] args, TextWriter output, TextWriter error) =>
        Build().Parse(args).Invoke(new InvocationConfiguration { Output = output, Error = error });
}
