using Sextant.Bench;

// Load drivers for the HTTP targets of bench/RESULTS.md. Usage:
//   dotnet run -c Release --project bench/Sextant.Bench -- ingest [sqlite|postgres] [seconds]
//   dotnet run -c Release --project bench/Sextant.Bench -- search [runs]
//   dotnet run -c Release --project bench/Sextant.Bench -- startup <path to sextant.dll>
//   dotnet run -c Release --project bench/Sextant.Bench -- artifacts <path to sextant.dll> [MiB]
//   dotnet run -c Release --project bench/Sextant.Bench -- ui [runs]   (needs /usr/bin/chromium)
//   dotnet run -c Release --project bench/Sextant.Bench -- search-profile [runs]   (in-process split of one search)
//   dotnet run -c Release --project bench/Sextant.Bench -- registry   (models:/ resolution and lineage latency)
//   dotnet run -c Release --project bench/Sextant.Bench -- data <path to sextant.dll> [files] [GiB]   (sextant data add/get)
//   dotnet run -c Release --project bench/Sextant.Bench -- tracelist <sextant.dll> [spans]   (trace list over 10 million spans)
//   dotnet run -c Release --project bench/Sextant.Bench -- span-migration [spans]   (migration 0010 on spans stored before it)
//   dotnet run -c Release --project bench/Sextant.Bench -- otlp <sextant.dll> [seconds] [senders] [sync]   (OTLP span ingestion; sync: --sync-spans)
//   dotnet run -c Release --project bench/Sextant.Bench -- gateway-soak <sextant.dll> [seconds] [rate] [sync]   (memory over a long run; sync: --sync-spans)
//   dotnet run -c Release --project bench/Sextant.Bench -- prompts <sextant.dll>   (prompt fetch by label: API and SDK cache)
//   dotnet run -c Release --project bench/Sextant.Bench -- eval <sextant.dll> [promptfoo folder|-] [items] [int8|float32|deterministic]   (an experiment beside promptfoo)
//   dotnet run -c Release --project bench/Sextant.Bench -- similarity [pairs] [int8|float32]   (the similarity evaluator's pairs/s)
//   dotnet run -c Release --project bench/Sextant.Bench -- gateway <sextant.dll> [portkey start-server.js|-] [seconds] [rates] [even|poisson]   (gateway overhead; arrivals evenly spaced by default)
return args.FirstOrDefault() switch
{
    "ingest" => await IngestionBenchmark.RunAsync(args.Skip(1).ToArray()),
    "search" => await SearchBenchmark.RunAsync(args.Skip(1).ToArray()),
    "startup" => await StartupBenchmark.RunAsync(args.Skip(1).ToArray()),
    "artifacts" => await ArtifactStreamingBenchmark.RunAsync(args.Skip(1).ToArray()),
    "ui" => await UiBenchmark.RunAsync(args.Skip(1).ToArray()),
    "search-profile" => await SearchProfile.RunAsync(args.Skip(1).ToArray()),
    "registry" => await RegistryBenchmark.RunAsync(args.Skip(1).ToArray()),
    "data" => await DataBenchmark.RunAsync(args.Skip(1).ToArray()),
    "gateway" => await GatewayBenchmark.RunAsync(args.Skip(1).ToArray()),
    "gateway-soak" => await GatewayBenchmark.SoakAsync(args.Skip(1).ToArray()),
    "otlp" => await OtlpBenchmark.RunAsync(args.Skip(1).ToArray()),
    "tracelist" => await TraceListBenchmark.RunAsync(args.Skip(1).ToArray()),
    "span-migration" => await TraceListBenchmark.MigrationAsync(args.Skip(1).ToArray()),
    "prompts" => await PromptBenchmark.RunAsync(args.Skip(1).ToArray()),
    "eval" => await EvalBenchmark.RunAsync(args.Skip(1).ToArray()),
    "similarity" => await EvalBenchmark.SimilarityAsync(args.Skip(1).ToArray()),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: Sextant.Bench ingest [sqlite|postgres] [seconds] | search [runs] | startup <sextant.dll> | artifacts <sextant.dll> [MiB] | ui [runs]");
    return 2;
}
