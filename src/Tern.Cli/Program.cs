// The `tern` command: the composition root of the command-line verbs.
using System.CommandLine;
using Tern.Cli.Commands;

var root = new RootCommand("Tern: a distributed RISC-V virtual-machine cluster.");
root.Subcommands.Add(RunCommand.Create());
root.Subcommands.Add(BenchCommand.Create());
return await root.Parse(args).InvokeAsync().ConfigureAwait(false);
