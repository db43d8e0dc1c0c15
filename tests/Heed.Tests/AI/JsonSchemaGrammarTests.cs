using System.Text.Json;
using Heed.AI;
using Heed.Llama;
using Heed.Tests.ShippedModel;

namespace Heed.Tests.AI;

/// <summary>
/// The converter's grammars are GBNF that llama.cpp accepts, and schemas it cannot enforce are
/// refused by name. (That the grammars produce valid JSON is tested by generating from them:
/// <see cref="ToolCallingTests"/>.)
/// </summary>
[Collection(ShippedModelCollection.Name)]
public sealed class JsonSchemaGrammarTests(ShippedModelFixture fixture)
{
    public static TheoryData<string> SupportedSchemas => new()
    {
        """{"type":"object","properties":{"a":{"type":"string"},"b":{"type":["integer","null"]},"c":{"type":"number"}},"required":["a"]}""",
        """{"type":"object","properties":{"x":{"type":"boolean"},"y":{"type":"boolean"}}}""",
        """{"type":"object","properties":{},"additionalProperties":{"type":"integer"}}""",
        """{"type":"object","properties":{},"additionalProperties":false}""",
        """{"type":"array","items":{"type":"object","properties":{"k":{"enum":["one","two",3,null]}},"required":["k"]},"minItems":1,"maxItems":3}""",
        """{"type":"string","minLength":2,"maxLength":5}""",
        """{"type":"string","format":"date-time"}""",
        """{"anyOf":[{"type":"string","format":"uuid"},{"type":"string","format":"date"},{"const":{"a":[1,"\"q\\"]}}]}""",
        """{"description":"anything"}""",
        """{"type":"object","condition":"an annotation Semantic Kernel writes","properties":{"a":{"type":"integer","minLength":3}}}""",
        "true",
    };

    [Theory]
    [MemberData(nameof(SupportedSchemas))]
    public void LlamaCppParsesTheGrammarOfEverySupportedSchema(string schema)
    {
        string grammar = JsonSchemaGrammar.FromSchema(JsonDocument.Parse(schema).RootElement);
        using var sampler = new TokenSampler(new GenerationOptions { Grammar = grammar }, fixture.Model);
    }

    [Fact]
    public void LlamaCppParsesTheAnyObjectGrammar()
    {
        using var sampler = new TokenSampler(new GenerationOptions { Grammar = JsonSchemaGrammar.AnyObject() }, fixture.Model);
    }

    [Fact]
    public void AMalformedGrammarIsAClearError()
    {
        var e = Assert.Throws<ArgumentException>(() => new TokenSampler(new GenerationOptions { Grammar = "root ::= missing-rule" }, fixture.Model));
        Assert.Contains("could not parse the GBNF grammar", e.Message);
        Assert.Throws<ArgumentException>(() => new GenerationOptions { Grammar = " " }.Validate());
    }

    [Theory]
    [InlineData("""{"$ref":"#/$defs/node"}""", "$ref")]
    [InlineData("""{"type":"string","pattern":"^a+$"}""", "pattern")]
    [InlineData("""{"type":"object","properties":{"n":{"type":"integer","minimum":1}}}""", "minimum")]
    [InlineData("""{"oneOf":[{"type":"string"},{"type":"integer"}]}""", "oneOf")]
    [InlineData("""{"type":"array","items":{"type":"string"},"uniqueItems":true}""", "uniqueItems")]
    [InlineData("""{"type":"string","format":"email"}""", "email")]
    [InlineData("""{"type":"object","properties":{"a":{"type":"string"}},"required":["b"]}""", "'b'")]
    [InlineData("""{"type":"decimal"}""", "decimal")]
    [InlineData("""{"anyOf":[{"type":"string"}],"type":"string"}""", "combines")]
    public void AnUnsupportedConstructIsRefusedByName(string schema, string construct)
    {
        var e = Assert.Throws<NotSupportedException>(() => JsonSchemaGrammar.FromSchema(JsonDocument.Parse(schema).RootElement));
        Assert.Contains(construct, e.Message);
    }

    [Fact]
    public void LiteralsEscapeWhatGbnfWouldReadAsSyntax()
    {
        Assert.Equal("\"a\\\"b\\\\c\\nd\\x01é\"", JsonSchemaGrammar.Literal("a\"b\\c\nd\u0001é"));
    }
}
