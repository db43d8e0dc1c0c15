namespace Heed.Mcp.Tests;

/// <summary>`heed chat` as a child process: lines in, streamed answers out, /exit ends it.</summary>
public sealed class ChatCommandTests(HeedProcess heed) : IClassFixture<HeedProcess>
{
    [Fact]
    public async Task ChatsUntilExit()
    {
        (int exitCode, string output, string error) = await heed.RunAsync("what is the pass key ?\n/clear\nand the fox ?\n/exit\nnever read\n",
            TimeSpan.FromMinutes(2), "chat", "--model", heed.ModelPath, "--chat-template", "chatml", "-n", "4", "-t", "0", "--context", "256",
            "--gpu-layers", "0");
        Assert.True(exitCode == 0, $"exit {exitCode}; stderr: {error}");
        Assert.Contains("/exit quits", output);
        Assert.Contains("(conversation cleared)", output);
        // One prompt per line read up to /exit: two questions, /clear and /exit.
        Assert.Equal(4, output.Split("> ").Length - 1);
        Assert.DoesNotContain("error:", output);
        Assert.DoesNotContain("never read", output);
    }

    [Fact]
    public async Task ModelWithoutUsableTemplateIsOneClearError()
    {
        (int exitCode, _, string error) = await heed.RunAsync("hi\n", TimeSpan.FromMinutes(2), "chat", "--model", heed.ModelPath, "--gpu-layers", "0");
        Assert.Equal(1, exitCode);
        Assert.Contains("no chat template", error.Replace("does not recognise the chat template", "no chat template"));
        Assert.Contains("--chat-template", error);
    }
}
