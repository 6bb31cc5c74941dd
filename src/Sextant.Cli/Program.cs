using Sextant.Cli;

return await SextantCli.Build().Parse(args).InvokeAsync();
