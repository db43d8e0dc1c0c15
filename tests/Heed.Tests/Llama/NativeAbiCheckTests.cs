using System.Runtime.InteropServices;
using Heed.Llama;

namespace Heed.Tests.Llama;

public sealed class NativeAbiCheckTests
{
    [StructLayout(LayoutKind.Sequential)]
    private struct BatchWithMissingField
    {
        public int n_tokens;
        public IntPtr token;
        public IntPtr embd;
        public IntPtr pos;
        public IntPtr n_seq_id;
        public IntPtr seq_id;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct BatchWithWrongType
    {
        public long n_tokens;
        public IntPtr token;
        public IntPtr embd;
        public IntPtr pos;
        public IntPtr n_seq_id;
        public IntPtr seq_id;
        public IntPtr logits;
    }

    [Fact]
    public void TheRealMirrorsMatch() => NativeAbiCheck.Verify();

    [Fact]
    public void AMissingFieldIsNamed()
    {
        LlamaBackend.EnsureInitialized();
        var e = Assert.Throws<HeedNativeException>(() => NativeAbiCheck.VerifyStruct("llama_batch", typeof(BatchWithMissingField)));
        Assert.Contains("llama_batch", e.Message);
        Assert.Contains("7 fields", e.Message);
    }

    [Fact]
    public void AMovedFieldIsNamed()
    {
        LlamaBackend.EnsureInitialized();
        var e = Assert.Throws<HeedNativeException>(() => NativeAbiCheck.VerifyStruct("llama_batch", typeof(BatchWithWrongType)));
        Assert.Contains("field 'n_tokens'", e.Message);
    }
}
