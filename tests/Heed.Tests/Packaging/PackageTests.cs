using System.IO.Compression;
using Heed.Tests.ShippedModel;

namespace Heed.Tests.Packaging;

/// <summary>
/// The NuGet story as a user lives it: Heed plus a native runtime package, restored from a local
/// feed into examples/QuickStart, run as a JIT app and as a NativeAOT binary on the shipped model.
/// </summary>
[Collection(ShippedModelCollection.Name)]
public sealed class PackageTests(ShippedModelFixture model, LocalFeedFixture feed) : IClassFixture<LocalFeedFixture>
{
    // The QuickStart's answers on its own two tasks (see examples/QuickStart/Program.cs).
    private const string IcrAnswer = "top passage [2] The pass key of the staging server is 48213";
    private const string PassKey = "71432";

    [Fact]
    [Trait("Category", "Package")]
    public void TheCpuPackageCarriesEveryRidAndVariantThatWasStaged()
    {
        string root = StandIn(("linux-x64", ["libheed.so", "libheed-llama.so", "libheed-ggml-cpu-x64.so", "libheed-ggml-cpu-haswell.so"]),
                              ("linux-arm64", ["libheed.so", "libheed-llama.so", "libheed-ggml-cpu.so"]));
        string output = Path.Combine(feed.Work, "standin-cpu");
        feed.Pack("bindings/Heed.Runtime.Cpu", output, "HeedRuntimeNativeRoot=" + root + "/");
        Assert.Equal(
            ["runtimes/linux-arm64/native/libheed-ggml-cpu.so", "runtimes/linux-arm64/native/libheed-llama.so", "runtimes/linux-arm64/native/libheed.so",
             "runtimes/linux-x64/native/libheed-ggml-cpu-haswell.so", "runtimes/linux-x64/native/libheed-ggml-cpu-x64.so",
             "runtimes/linux-x64/native/libheed-llama.so", "runtimes/linux-x64/native/libheed.so"],
            PayloadOf(Directory.GetFiles(output, "Heed.Runtime.Cpu.*.nupkg").Single()));
    }

    [Fact]
    [Trait("Category", "Package")]
    public void TheCudaPackageCarriesTheCudaBuildForLinuxX64()
    {
        string root = StandIn(("cuda13/linux-x64", ["libheed.so", "libheed-llama.so", "libheed-ggml-cuda.so", "libheed-ggml-cpu-x64.so"]));
        string output = Path.Combine(feed.Work, "standin-cuda");
        feed.Pack("bindings/Heed.Runtime.Cuda13", output, "HeedRuntimeNativeRoot=" + root + "/");
        Assert.Equal(
            ["runtimes/linux-x64/native/libheed-ggml-cpu-x64.so", "runtimes/linux-x64/native/libheed-ggml-cuda.so",
             "runtimes/linux-x64/native/libheed-llama.so", "runtimes/linux-x64/native/libheed.so"],
            PayloadOf(Directory.GetFiles(output, "Heed.Runtime.Cuda13.*.nupkg").Single()));
    }

    [Fact]
    [Trait("Category", "Package")]
    public void TheCudaPackageIsNotMadeFromACpuBuild()
    {
        string root = StandIn(("cuda13/linux-x64", ["libheed.so", "libheed-llama.so", "libheed-ggml-cpu-x64.so"]));
        (int exitCode, string output) = LocalFeedFixture.Run("dotnet", RepositoryPaths.Root,
            ["pack", Path.Combine(RepositoryPaths.Root, "bindings/Heed.Runtime.Cuda13"), "-c", "Release", "-o", Path.Combine(feed.Work, "no-cuda"),
             "-p:HeedRuntimeNativeRoot=" + root + "/", "-p:IntermediateOutputPath=" + Path.Combine(feed.Work, "obj", "no-cuda") + "/"],
            expectSuccess: false);
        Assert.NotEqual(0, exitCode);
        Assert.Contains("has no ggml CUDA backend", output);
    }

    [Fact]
    [Trait("Category", "Package")]
    public void TheQuickStartRunsFromTheLocalFeed()
    {
        string app = feed.CopyQuickStart("QuickStartJit");
        LocalFeedFixture.Dotnet(app, ["restore"]);
        string output = LocalFeedFixture.Dotnet(app, ["run", "--no-restore", "-c", "Release", "--", model.ModelPath]);
        AssertQuickStartAnswered(output);
    }

    [Fact]
    [Trait("Category", "Package")]
    public void TheNativeAotQuickStartRunsIcrAndInfiniRetriAndSaysWhenCudaCannotRun()
    {
        string app = feed.CopyQuickStart("QuickStartAot");
        string publish = Path.Combine(app, "aot");
        LocalFeedFixture.Dotnet(app, ["publish", "-c", "Release", "-r", "linux-x64", "-p:PublishAot=true", "-o", publish]);
        string binary = Path.Combine(publish, "QuickStart");
        Assert.False(File.Exists(Path.Combine(publish, "QuickStart.dll")), "a NativeAOT publish has no IL assembly to JIT");

        string output = LocalFeedFixture.Run(binary, app, [model.ModelPath], expectSuccess: true).Output;
        AssertQuickStartAnswered(output);
        Assert.Contains("backend: CPU", output);
        Assert.Matches(@"loaded CPU backend from \S*ggml-cpu\S*\.so", output);

        // The same libraries plus a CUDA module that cannot load: the app runs on the CPU and says why, once.
        string natives = Path.Combine(feed.Work, "broken-cuda");
        Directory.CreateDirectory(natives);
        foreach (string library in Directory.GetFiles(publish, "*.so"))
        {
            File.Copy(library, Path.Combine(natives, Path.GetFileName(library)));
        }
        File.WriteAllText(Path.Combine(natives, "libheed-ggml-cuda.so"), "not a shared library");
        output = LocalFeedFixture.Run(binary, app, [model.ModelPath], expectSuccess: true,
            new Dictionary<string, string> { ["HEED_NATIVE_DIR"] = natives }).Output;
        AssertQuickStartAnswered(output);
        Assert.Single(output.Split('\n'), line => line.Contains("Heed falls back to the CPU: the CUDA backend cannot load"));
    }

    private static void AssertQuickStartAnswered(string output)
    {
        Assert.Contains(IcrAnswer, output);
        Assert.Matches($"InfiniRetri read \\d+ tokens in \\d+ chunks; best evidence: .*{PassKey}", output);
    }

    private string StandIn(params (string Folder, string[] Files)[] folders)
    {
        string root = Path.Combine(feed.Work, "standin-" + Guid.NewGuid().ToString("N"));
        foreach ((string folder, string[] files) in folders)
        {
            Directory.CreateDirectory(Path.Combine(root, folder));
            foreach (string file in files)
            {
                File.WriteAllText(Path.Combine(root, folder, file), file);
            }
        }
        return root;
    }

    // Everything in the package but NuGet's own metadata.
    private static string[] PayloadOf(string package)
    {
        using ZipArchive zip = ZipFile.OpenRead(package);
        return zip.Entries.Select(e => e.FullName)
            .Where(n => !n.EndsWith(".nuspec", StringComparison.Ordinal) && !n.StartsWith("_rels/", StringComparison.Ordinal)
                        && !n.StartsWith("package/", StringComparison.Ordinal) && n != "[Content_Types].xml")
            .Order(StringComparer.Ordinal).ToArray();
    }
}
