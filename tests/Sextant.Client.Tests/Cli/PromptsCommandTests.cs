namespace Sextant.Client.Tests.Cli;

/// <summary>`sextant prompts`: files in a repository pushed and pulled both ways, labels, render and diff.</summary>
[Collection(ConsoleCollection.Name)]
public sealed class PromptsCommandTests(ServerFixture fixture) : IClassFixture<ServerFixture>, IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "sextant-prompts-" + Guid.NewGuid().ToString("N")[..8]);

    private string Write(string relative, string text)
    {
        var path = Path.Combine(_folder, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
        return path;
    }

    [Fact]
    public async Task Push_makes_versions_only_for_changed_files_and_pull_writes_them_back()
    {
        Write("support/answer.yaml",
            """
            config:
              model: gpt-4o-mini
              temperature: 0.2
            labels: [staging]
            tags: [support]
            messages:
              - role: system
                content: "You answer for {{company}}."
              - role: user
                content: "{{question}}"
            """);
        Write("greet.md",
            """
            ---
            message: first greeting
            ---
            Hello {{name}}!
            """);
        var push = await CliRunner.RunAsync(fixture.Address, "prompts", "push", _folder);
        Assert.True(push.ExitCode == 0, push.Out + push.Error);
        Assert.Contains("2 new version(s), 0 unchanged", push.Out);

        using var client = fixture.CreateClient();
        var answer = await client.GetPromptAsync("support/answer", "staging");
        Assert.Equal(("chat", 1), (answer.Type, answer.Version));
        Assert.Equal(0.2, answer.Config!.Value.GetProperty("temperature").GetDouble());
        Assert.Equal("first greeting", (await client.GetPromptAsync("greet", "latest")).Message);

        // Unchanged files make no version.
        var again = await CliRunner.RunAsync(fixture.Address, "prompts", "push", _folder);
        Assert.Contains("0 new version(s), 2 unchanged", again.Out);

        // Pulled files push back unchanged: the round trip keeps template and config.
        var pulled = _folder + "-pulled";
        var pull = await CliRunner.RunAsync(fixture.Address, "prompts", "pull", pulled);
        Assert.True(pull.ExitCode == 0, pull.Out + pull.Error);
        Assert.True(File.Exists(Path.Combine(pulled, "support", "answer.yaml")));
        Assert.StartsWith("---", File.ReadAllText(Path.Combine(pulled, "greet.md")), StringComparison.Ordinal);
        Assert.Contains("0 new version(s), 2 unchanged", (await CliRunner.RunAsync(fixture.Address, "prompts", "push", pulled)).Out);

        // A changed file makes version 2; label, render and diff work on it.
        Write("greet.md", "Hello {{name}}, welcome!\n");
        Assert.Contains("1 new version(s), 1 unchanged", (await CliRunner.RunAsync(fixture.Address, "prompts", "push", _folder, "-m", "warmer")).Out);
        Assert.Equal(0, (await CliRunner.RunAsync(fixture.Address, "prompts", "label", "greet", "production", "2")).ExitCode);
        var render = await CliRunner.RunAsync(fixture.Address, "prompts", "render", "greet", "--var", "name=Ana", "--var", "unused=1");
        Assert.Contains("Hello Ana, welcome!", render.Out);
        Assert.Contains("unused variables: unused", render.Out);
        var diff = await CliRunner.RunAsync(fixture.Address, "prompts", "diff", "greet", "1", "2");
        Assert.Contains("- Hello {{name}}!", diff.Out);
        Assert.Contains("+ Hello {{name}}, welcome!", diff.Out);
        var missing = await CliRunner.RunAsync(fixture.Address, "prompts", "render", "greet");
        Assert.NotEqual(0, missing.ExitCode);
        Assert.Contains("'name'", missing.Out + missing.Error);
    }

    [Fact]
    public async Task A_malformed_file_pushes_nothing_and_names_the_file_and_position()
    {
        Write("ok.md", "Fine {{x}}\n");
        Write("team/bad.yaml",
            """
            messages:
              - role: user
                content: "Hi {{name"
            """);
        var push = await CliRunner.RunAsync(fixture.Address, "prompts", "push", _folder);
        Assert.NotEqual(0, push.ExitCode);
        Assert.Contains("team/bad.yaml: messages[0].content: A tag opened with {{ is not closed with }} (line 1, column 4)", push.Out + push.Error);
        using var client = fixture.CreateClient();
        Assert.Empty((await client.ListPromptsAsync("ok")).Prompts);

        Write("team/bad.yaml", "messages: [unclosed\n");
        var yaml = await CliRunner.RunAsync(fixture.Address, "prompts", "push", _folder);
        Assert.Contains("team/bad.yaml: not valid YAML at line", yaml.Out + yaml.Error);
    }

    public void Dispose()
    {
        foreach (var folder in new[] { _folder, _folder + "-pulled" })
        {
            try
            {
                Directory.Delete(folder, recursive: true);
            }
            catch (IOException)
            {
                // Not there (a test that never pulled) or busy: temporary files.
            }
        }
    }
}
