namespace Heed.Rag;

/// <summary>What an ingest is doing.</summary>
public enum IngestStage
{
    /// <summary>Reading, hashing and chunking files.</summary>
    Reading,

    /// <summary>Computing embeddings for new chunks.</summary>
    Embedding,

    /// <summary>Writing the index file.</summary>
    Saving,

    /// <summary>Finished.</summary>
    Done,
}
