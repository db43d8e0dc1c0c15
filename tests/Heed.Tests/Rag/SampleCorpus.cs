namespace Heed.Tests.Rag;

/// <summary>A few small documents on distinct topics.</summary>
internal static class SampleCorpus
{
    public const string Plants =
        "Plants make their food by photosynthesis. Chlorophyll in the leaves absorbs sunlight. " +
        "The energy turns water and carbon dioxide into sugar and oxygen.\n\nRoots take up water and minerals from the soil.";

    public const string Cars =
        "A car engine burns fuel to move pistons. The pistons turn the crankshaft. " +
        "Modern cars also use electric motors and batteries.\n\nA truck carries heavy loads over long roads.";

    public const string Oceans =
        "Oceans cover most of the planet. Tides are caused by the gravity of the moon. " +
        "Coral reefs grow in warm shallow water.";

    public const string HtmlPage =
        "<html><head><title>Volcanoes</title><script>var lava = 'not text';</script></head><body><nav>menu</nav>" +
        "<p>Volcanoes erupt when magma rises through the crust.</p><p>Ash clouds can stop air travel.</p></body></html>";

    public static void WriteAll(TempFolder folder, string subfolder = "docs")
    {
        folder.Write(Path.Combine(subfolder, "plants.txt"), Plants);
        folder.Write(Path.Combine(subfolder, "cars.md"), "# Cars\n\n" + Cars);
        folder.Write(Path.Combine(subfolder, "deep", "oceans.txt"), Oceans);
        folder.Write(Path.Combine(subfolder, "volcano.html"), HtmlPage);
    }
}
