using System.CommandLine;
using Sextant.Cli;

// On Ctrl+C or SIGTERM the server finishes the requests in flight and drains its write queue; the default
// 2-second grace of System.CommandLine could cut that short.
return await SextantCli.Build().Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = TimeSpan.FromSeconds(30) });
