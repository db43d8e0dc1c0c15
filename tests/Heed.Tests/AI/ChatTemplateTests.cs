using Heed.AI;

namespace Heed.Tests.AI;

[Collection(TinyModelCollection.Name)]
public sealed class ChatTemplateTests(TinyModelFixture fixture)
{
    [Fact]
    public void NamedTemplateFormatsMessagesInItsFamily()
    {
        ChatTemplate template = ChatTemplate.FromName("chatml");
        string prompt = template.Format([("system", "be brief"), ("user", "hi")]);
        Assert.Equal("<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", prompt);
        string noAssistant = template.Format([("user", "hi")], addAssistantPrompt: false);
        Assert.Equal("<|im_start|>user\nhi<|im_end|>\n", noAssistant);
    }

    [Fact]
    public void LongMessagesAreFormattedWhole()
    {
        string content = string.Concat(Enumerable.Repeat("long text ", 5000));
        string prompt = ChatTemplate.FromName("chatml").Format([("user", content)]);
        Assert.Contains(content, prompt);
    }

    [Fact]
    public void UnknownNameIsRejectedWithExamples()
    {
        var e = Assert.Throws<ArgumentException>(() => ChatTemplate.FromName("no-such-template"));
        Assert.Contains("chatml", e.Message);
    }

    [Fact]
    public void ModelTemplateLlamaCppCannotReadNeedsAFallback()
    {
        // The tiny model's Jinja template is not one of the families llama.cpp recognises.
        Assert.NotNull(fixture.Model.ChatTemplate);
        var e = Assert.Throws<InvalidOperationException>(() => ChatTemplate.FromModel(fixture.Model));
        Assert.Contains("fallback", e.Message, StringComparison.OrdinalIgnoreCase);
        ChatTemplate withFallback = ChatTemplate.FromModel(fixture.Model, "llama3");
        Assert.Equal("fallback", withFallback.Source);
        Assert.Contains("<|start_header_id|>user<|end_header_id|>", withFallback.Format([("user", "hi")]));
    }

    [Fact]
    public void EmptyInputIsRejected()
    {
        ChatTemplate template = ChatTemplate.FromName("chatml");
        Assert.Throws<ArgumentException>(() => template.Format([]));
        Assert.Throws<ArgumentException>(() => template.Format([("", "text")]));
        Assert.Throws<ArgumentException>(() => ChatTemplate.FromModel(fixture.Model, " "));
    }
}
