using System.Text;

namespace Heed.TestModels;

/// <summary>
/// Writes GGUF v3 files: header, metadata, tensor infos, aligned tensor data. Enough of the
/// format for the tests to make their own models (no downloads) and broken files.
/// </summary>
public sealed class GgufWriter
{
    public const int Alignment = 32;

    private enum ValueType : uint
    {
        UInt32 = 4, Int32 = 5, Float32 = 6, Bool = 7, String = 8, Array = 9,
    }

    private readonly List<(string Key, Action<BinaryWriter> Write)> _metadata = [];
    private readonly List<Tensor> _tensors = [];

    // A tensor holds its f32 data, or (f16) makes its values while the file is written.
    private sealed record Tensor(string Name, long[] Shape, float[]? Data, Func<long, float>? ValueAt)
    {
        public long Count => Shape.Aggregate(1L, (a, b) => a * b);

        public uint GgmlType => Data is null ? 1u : 0u; // GGML_TYPE_F16 : GGML_TYPE_F32

        public ulong Bytes => (ulong)Count * (Data is null ? 2ul : 4ul);
    }

    public GgufWriter Add(string key, string value) => Put(key, w => { w.Write((uint)ValueType.String); WriteString(w, value); });

    public GgufWriter Add(string key, uint value) => Put(key, w => { w.Write((uint)ValueType.UInt32); w.Write(value); });

    public GgufWriter Add(string key, float value) => Put(key, w => { w.Write((uint)ValueType.Float32); w.Write(value); });

    public GgufWriter Add(string key, bool value) => Put(key, w => { w.Write((uint)ValueType.Bool); w.Write(value); });

    public GgufWriter Add(string key, IReadOnlyList<string> values) => Put(key, w =>
    {
        w.Write((uint)ValueType.Array);
        w.Write((uint)ValueType.String);
        w.Write((ulong)values.Count);
        foreach (string v in values)
        {
            WriteString(w, v);
        }
    });

    public GgufWriter Add(string key, IReadOnlyList<int> values) => Put(key, w =>
    {
        w.Write((uint)ValueType.Array);
        w.Write((uint)ValueType.Int32);
        w.Write((ulong)values.Count);
        foreach (int v in values)
        {
            w.Write(v);
        }
    });

    /// <summary>An f32 tensor; shape in ggml order (ne0, the fastest-varying dimension, first).</summary>
    public GgufWriter AddTensor(string name, long[] shape, float[] data)
    {
        if (shape.Aggregate(1L, (a, b) => a * b) != data.Length)
        {
            throw new ArgumentException($"tensor {name}: shape and data length differ");
        }
        _tensors.Add(new Tensor(name, shape, data, null));
        return this;
    }

    /// <summary>
    /// An f16 tensor whose element i is <paramref name="valueAt"/>(i), computed while the file is
    /// written: a model of gigabytes needs no memory for its weights. Not seen by <see cref="EditTensors"/>.
    /// </summary>
    public GgufWriter AddHalfTensor(string name, long[] shape, Func<long, float> valueAt)
    {
        _tensors.Add(new Tensor(name, shape, null, valueAt));
        return this;
    }

    /// <summary>Lets <paramref name="edit"/> change each tensor's data in place before it is written.</summary>
    public void EditTensors(Action<string, float[]> edit)
    {
        foreach (Tensor t in _tensors.Where(t => t.Data is not null))
        {
            edit(t.Name, t.Data!);
        }
    }

    public void Write(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        using var stream = File.Create(path);
        using var w = new BinaryWriter(stream, Encoding.UTF8);
        w.Write(0x46554747u); // "GGUF"
        w.Write(3u);
        w.Write((ulong)_tensors.Count);
        w.Write((ulong)_metadata.Count);
        foreach ((string key, Action<BinaryWriter> write) in _metadata)
        {
            WriteString(w, key);
            write(w);
        }
        ulong offset = 0;
        foreach (Tensor t in _tensors)
        {
            WriteString(w, t.Name);
            w.Write((uint)t.Shape.Length);
            foreach (long d in t.Shape)
            {
                w.Write((ulong)d);
            }
            w.Write(t.GgmlType);
            w.Write(offset); // relative to the start of the data section; each tensor aligned
            offset += Align(t.Bytes);
        }
        Pad(w);
        foreach (Tensor t in _tensors)
        {
            if (t.Data is not null)
            {
                foreach (float v in t.Data)
                {
                    w.Write(v);
                }
            }
            else
            {
                WriteHalves(w, t.Count, t.ValueAt!);
            }
            Pad(w);
        }
    }

    // f16 values made a block at a time; the blocks in parallel, written in order.
    private static void WriteHalves(BinaryWriter w, long count, Func<long, float> valueAt)
    {
        const int Block = 1 << 20;
        var buffer = new Half[Block];
        for (long start = 0; start < count; start += Block)
        {
            int n = (int)Math.Min(Block, count - start);
            long first = start;
            Parallel.For(0, (n + 4095) / 4096, part =>
            {
                for (int i = part * 4096; i < Math.Min(n, (part + 1) * 4096); i++)
                {
                    buffer[i] = (Half)valueAt(first + i);
                }
            });
            w.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(buffer.AsSpan(0, n)));
        }
    }

    private static ulong Align(ulong n) => (n + Alignment - 1) / Alignment * Alignment;

    private static void Pad(BinaryWriter w)
    {
        while (w.BaseStream.Position % Alignment != 0)
        {
            w.Write((byte)0);
        }
    }

    // A key written again replaces the earlier value (GGUF readers refuse duplicate keys), so a
    // caller's addMetadata can override a default such as tokenizer.chat_template.
    private GgufWriter Put(string key, Action<BinaryWriter> write)
    {
        int existing = _metadata.FindIndex(m => m.Item1 == key);
        if (existing >= 0)
        {
            _metadata[existing] = (key, write);
        }
        else
        {
            _metadata.Add((key, write));
        }
        return this;
    }

    private static void WriteString(BinaryWriter w, string s)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(s);
        w.Write((ulong)bytes.Length);
        w.Write(bytes);
    }
}
