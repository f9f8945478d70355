// The `tern` command's entry point.
return await Tern.Cli.TernApp.Build().Parse(args).InvokeAsync().ConfigureAwait(false);
