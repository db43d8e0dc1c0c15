using System.Text;
using Heed.Text;

namespace Heed.Tests.Rag;

public class DocumentLoaderTests
{
    [Fact]
    public async Task Html_gives_visible_text_without_script_style_or_navigation_and_keeps_the_title()
    {
        using var folder = new TempFolder();
        string path = folder.Write("page.html",
            "<html><head><title> My  Page </title><style>.x{color:red}</style><script>var secret=1;</script></head>" +
            "<body><nav>Home | About</nav><h1>Heading</h1><p>First   para.</p><script>alert('hidden')</script>" +
            "<p>Second <b>bold</b> para.<br>New line</p><div hidden>invisible</div><noscript>nojs</noscript></body></html>");
        DocumentLoadResult result = await new DocumentLoader().LoadAsync(path);
        LoadedDocument document = Assert.IsType<LoadedDocument>(result.Document);
        Assert.Equal("My Page", document.Title);
        Assert.Equal("My Page\nHeading\nFirst para.\nSecond bold para.\nNew line", document.Text);
        Assert.Equal(path, document.SourcePath);
    }

    [Fact]
    public async Task Text_and_markdown_keep_their_text_and_markdown_its_first_heading()
    {
        using var folder = new TempFolder();
        string txt = folder.Write("a.txt", "Plain text.\nSecond line.");
        string md = folder.Write("b.md", "Intro line\n# The Title\n\nBody.");
        var loader = new DocumentLoader();
        LoadedDocument t = (await loader.LoadAsync(txt)).Document!;
        LoadedDocument m = (await loader.LoadAsync(md)).Document!;
        Assert.Equal("Plain text.\nSecond line.", t.Text);
        Assert.Null(t.Title);
        Assert.Equal("The Title", m.Title);
        Assert.Equal("Intro line\n# The Title\n\nBody.", m.Text);
    }

    [Fact]
    public async Task Invalid_utf8_is_replaced_and_logged_as_a_warning_never_thrown()
    {
        using var folder = new TempFolder();
        byte[] bytes = [.. "abc "u8, 0xC3, 0x28, .. " def "u8, 0xFF, .. " end."u8];
        string path = folder.WriteBytes("bad.txt", bytes);
        var logger = new RecordingLogger();
        LoadedDocument document = (await new DocumentLoader(logger).LoadAsync(path)).Document!;
        Assert.Equal("abc \uFFFD( def \uFFFD end.", document.Text);
        Assert.Equal(2, document.InvalidUtf8Sequences);
        string warning = Assert.Single(logger.Warnings);
        Assert.Contains(path, warning);
        Assert.Contains("2 invalid", warning);
    }

    [Fact]
    public async Task A_utf8_byte_order_mark_is_dropped_and_utf16_with_its_mark_is_text_not_binary()
    {
        using var folder = new TempFolder();
        string utf8 = folder.WriteBytes("bom8.txt", [0xEF, 0xBB, 0xBF, .. "Hello."u8]);
        string utf16 = folder.WriteBytes("bom16.txt", [.. Encoding.Unicode.GetPreamble(), .. Encoding.Unicode.GetBytes("Wide text.")]);
        var loader = new DocumentLoader();
        Assert.Equal("Hello.", (await loader.LoadAsync(utf8)).Document!.Text);
        Assert.Equal("Wide text.", (await loader.LoadAsync(utf16)).Document!.Text);
    }

    [Fact]
    public async Task A_binary_file_is_skipped_with_the_reason()
    {
        using var folder = new TempFolder();
        byte[] bytes = [.. "looks like text "u8, 0x00, 0x01, 0x02, .. "more"u8];
        string path = folder.WriteBytes("data.txt", bytes);
        DocumentLoadResult result = await new DocumentLoader().LoadAsync(path);
        Assert.Null(result.Document);
        Assert.Equal(path, result.Skipped!.Path);
        Assert.Contains("NUL byte at offset 16", result.Skipped.Reason);
    }

    [Fact]
    public async Task Missing_files_and_unsupported_extensions_are_refused_with_a_reason()
    {
        using var folder = new TempFolder();
        var loader = new DocumentLoader();
        var missing = await Assert.ThrowsAsync<FileNotFoundException>(() => loader.LoadAsync(folder.Combine("none.txt")));
        Assert.Contains("check the path", missing.Message);
        string pdf = folder.Write("x.pdf", "%PDF");
        var unsupported = await Assert.ThrowsAsync<ArgumentException>(() => loader.LoadAsync(pdf));
        Assert.Contains(".txt", unsupported.Message);
        await Assert.ThrowsAsync<ArgumentException>(() => loader.LoadAsync(" "));
        Assert.True(DocumentLoader.IsSupported("A.HTM"));
    }
}
