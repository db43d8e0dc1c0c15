using Heed.AI;

namespace Heed.Tests.AI;

public sealed class AllowedRootsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("heed-roots-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Make(params string[] parts)
    {
        string path = Path.Combine([_dir, .. parts]);
        Directory.CreateDirectory(path);
        return path;
    }

    [Fact]
    public void PathsInsideARootAreAllowed()
    {
        string root = Make("docs");
        File.WriteAllText(Path.Combine(root, "a.txt"), "a");
        var roots = new AllowedRoots([root]);
        Assert.Equal(Path.Combine(root, "a.txt"), roots.Resolve(Path.Combine(root, "a.txt")));
        Assert.Equal(root, roots.Resolve(root));
        Assert.Equal(root, roots.Resolve(root + Path.DirectorySeparatorChar));
        Assert.True(roots.IsAllowed(Path.Combine(root, "sub", "not-yet.txt")));
    }

    [Fact]
    public void LookAlikePrefixAndDotDotAreRefused()
    {
        string root = Make("docs");
        string evil = Make("docs-evil");
        var roots = new AllowedRoots([root]);
        var e = Assert.Throws<UnauthorizedAccessException>(() => roots.Resolve(Path.Combine(evil, "x.txt")));
        Assert.Contains("AllowedRoots", e.Message);
        Assert.Throws<UnauthorizedAccessException>(() => roots.Resolve(Path.Combine(root, "..", "docs-evil", "x.txt")));
        Assert.Throws<UnauthorizedAccessException>(() => roots.Resolve(_dir));
    }

    [Fact]
    public void SymbolicLinksOutOfARootAreRefused()
    {
        string root = Make("docs");
        string secret = Make("secret");
        File.WriteAllText(Path.Combine(secret, "key.txt"), "s3cret");
        Directory.CreateSymbolicLink(Path.Combine(root, "linked-dir"), secret);
        File.CreateSymbolicLink(Path.Combine(root, "linked-file.txt"), Path.Combine(secret, "key.txt"));
        var roots = new AllowedRoots([root]);
        Assert.Throws<UnauthorizedAccessException>(() => roots.Resolve(Path.Combine(root, "linked-dir", "key.txt")));
        Assert.Throws<UnauthorizedAccessException>(() => roots.Resolve(Path.Combine(root, "linked-file.txt")));
        Assert.Throws<UnauthorizedAccessException>(() => roots.Resolve(Path.Combine(root, "linked-dir")));
    }

    [Fact]
    public void SymbolicLinksInsideARootAndLinkedRootsWork()
    {
        string real = Make("real-docs");
        File.WriteAllText(Path.Combine(real, "a.txt"), "a");
        string linkRoot = Path.Combine(_dir, "docs-link");
        Directory.CreateSymbolicLink(linkRoot, real);
        var roots = new AllowedRoots([linkRoot]);
        Assert.Equal(real, roots.Roots.Single());
        Assert.Equal(Path.Combine(real, "a.txt"), roots.Resolve(Path.Combine(linkRoot, "a.txt")));
        Assert.Equal(Path.Combine(real, "a.txt"), roots.Resolve(Path.Combine(real, "a.txt")));
    }

    [Fact]
    public void NoRootsRefusesEverythingClearly()
    {
        var e = Assert.Throws<UnauthorizedAccessException>(() => new AllowedRoots([]).Resolve(_dir));
        Assert.Contains("no folders are allowed", e.Message);
        Assert.Throws<ArgumentException>(() => new AllowedRoots([" "]));
    }
}
