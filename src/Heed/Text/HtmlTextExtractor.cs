using System.Text;
using AngleSharp.Dom;
using AngleSharp.Html.Parser;

namespace Heed.Text;

/// <summary>
/// The text a reader of an HTML page sees: text nodes of the body, without script, style, navigation and other
/// non-content elements; block elements end lines so that sentence splitting sees paragraph breaks.
/// </summary>
internal static class HtmlTextExtractor
{
    private static readonly HashSet<string> Skipped = new(StringComparer.OrdinalIgnoreCase)
    {
        "script", "style", "nav", "noscript", "template", "head", "svg", "iframe", "object", "canvas", "button", "select",
    };

    private static readonly HashSet<string> Blocks = new(StringComparer.OrdinalIgnoreCase)
    {
        "address", "article", "aside", "blockquote", "dd", "div", "dl", "dt", "fieldset", "figcaption", "figure",
        "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "ol", "p", "pre", "section",
        "table", "tr", "td", "th", "ul", "caption", "summary", "details",
    };

    /// <summary>Title (or null) and visible text, the title as the first line when there is one.</summary>
    public static (string? Title, string Text) Extract(string html)
    {
        var parser = new HtmlParser();
        using IDocument document = parser.ParseDocument(html);
        string? title = string.IsNullOrWhiteSpace(document.Title) ? null : CollapseWhitespace(document.Title);
        var text = new VisibleText();
        if (title is not null)
        {
            text.Append(title);
            text.EndBlock();
        }
        INode? root = (INode?)document.Body ?? document.DocumentElement;
        if (root is not null)
        {
            Walk(root, text, preformatted: false);
        }
        return (title, text.ToString());
    }

    private static void Walk(INode node, VisibleText text, bool preformatted)
    {
        foreach (INode child in node.ChildNodes)
        {
            switch (child)
            {
                case IText t:
                    if (preformatted)
                    {
                        text.AppendPreformatted(t.Data);
                    }
                    else
                    {
                        text.Append(t.Data);
                    }
                    break;
                case IElement e:
                    if (Skipped.Contains(e.LocalName) || e.HasAttribute("hidden"))
                    {
                        break;
                    }
                    if (e.LocalName.Equals("br", StringComparison.OrdinalIgnoreCase))
                    {
                        text.EndBlock();
                        break;
                    }
                    bool block = Blocks.Contains(e.LocalName);
                    if (block)
                    {
                        text.EndBlock();
                    }
                    Walk(e, text, preformatted || e.LocalName.Equals("pre", StringComparison.OrdinalIgnoreCase));
                    if (block)
                    {
                        text.EndBlock();
                    }
                    break;
            }
        }
    }

    private static string CollapseWhitespace(string s)
    {
        var text = new VisibleText();
        text.Append(s);
        return text.ToString();
    }

    /// <summary>Builds text the way a browser renders whitespace: runs collapse to one space, blocks end lines.</summary>
    private sealed class VisibleText
    {
        private readonly StringBuilder _sb = new();

        public void Append(string data)
        {
            foreach (char c in data)
            {
                if (char.IsWhiteSpace(c))
                {
                    if (_sb.Length > 0 && _sb[^1] != ' ' && _sb[^1] != '\n')
                    {
                        _sb.Append(' ');
                    }
                }
                else
                {
                    _sb.Append(c);
                }
            }
        }

        public void AppendPreformatted(string data) => _sb.Append(data.Replace("\r\n", "\n"));

        public void EndBlock()
        {
            while (_sb.Length > 0 && _sb[^1] == ' ')
            {
                _sb.Length--;
            }
            if (_sb.Length > 0 && _sb[^1] != '\n')
            {
                _sb.Append('\n');
            }
        }

        public override string ToString()
        {
            EndBlock();
            return _sb.ToString().TrimEnd('\n');
        }
    }
}
