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
    private readonly List<(string Name, long[] Shape, float[] Data)> _tensors = [];

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
        _tensors.Add((name, shape, data));
        return this;
    }

    /// <summary>Lets <paramref name="edit"/> change each tensor's data in place before it is written.</summary>
    public void EditTensors(Action<string, float[]> edit)
    {
        foreach ((string name, _, float[] data) in _tensors)
        {
            edit(name, data);
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
        foreach ((string name, long[] shape, float[] data) in _tensors)
        {
            WriteString(w, name);
            w.Write((uint)shape.Length);
            foreach (long d in shape)
            {
                w.Write((ulong)d);
            }
            w.Write(0u); // GGML_TYPE_F32
            w.Write(offset); // relative to the start of the data section; each tensor aligned
            offset += Align((ulong)data.Length * 4);
        }
        Pad(w);
        foreach ((_, _, float[] data) in _tensors)
        {
            foreach (float v in data)
            {
                w.Write(v);
            }
            Pad(w);
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
