using System.Text.Json;
using Heed.Examples.SemanticKernel;
using Heed.Tests.ShippedModel;

namespace Heed.SemanticKernel.Tests;

/// <summary>examples/SemanticKernel (the README's "With Semantic Kernel" sample) runs on the shipped model.</summary>
[Collection(ShippedModelCollection.Name)]
public sealed class ExampleTests(ShippedModelFixture fixture)
{
    [Fact]
    public async Task TheSemanticKernelExampleRanksAndAnswers()
    {
        var output = new StringWriter();
        await Example.RunAsync(fixture.ModelPath, output);
        string text = output.ToString();
        int ranked = text.IndexOf("ranked: ", StringComparison.Ordinal);
        int answer = text.IndexOf("\nanswer: ", StringComparison.Ordinal);
        Assert.True(ranked == 0 && answer > ranked, text);
        string[] documents = JsonDocument.Parse(text["ranked: ".Length..answer]).RootElement.EnumerateArray()
            .Select(d => d.GetProperty("text").GetString()!).Order().ToArray();
        Assert.Equal(["The fox sleeps in the barn.", "The pass key is 4321."], documents);
        Assert.True(text[(answer + "\nanswer: ".Length)..].Trim().Length > 0, text);
    }
}
