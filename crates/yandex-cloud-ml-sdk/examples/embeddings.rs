//! `text_embeddings`: embed a small corpus with the document model, a question with the query
//! model, and rank the documents by cosine similarity (top-k retrieval). Similarity is yours to
//! compute: the vectors are plain `f64`s.

use yandex_cloud_ml_sdk::{Sdk, embeddings::Embedding};

#[path = "connect/mod.rs"]
mod connect;

#[tokio::main]
pub async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (sdk, _emulator) = connect::sdk().await?;
    run(&sdk, &mut std::io::stdout()).await
}

fn cosine(a: &Embedding, b: &Embedding) -> f64 {
    let dot: f64 = a.as_slice().iter().zip(b.as_slice()).map(|(x, y)| x * y).sum();
    let norm = |e: &Embedding| e.as_slice().iter().map(|x| x * x).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

/// The example, writing what it shows to `out` (stdout when run; a buffer in the tests).
pub async fn run(sdk: &Sdk, out: &mut dyn std::io::Write) -> Result<(), Box<dyn std::error::Error>> {
    let corpus = [
        "Paris is the capital and largest city of France.",
        "The Volga is the longest river in Europe.",
        "Rust is a programming language with a borrow checker.",
        "Lyon is a large city in France, known for its food.",
    ];
    // One call per text, four at a time, vectors in the order of the texts.
    let documents = sdk.models().text_embeddings("doc").run_many(corpus).concurrency(4).await?;
    let question = "What is the capital of France?";
    let query = sdk.models().text_embeddings("query").run(question).await?;
    writeln!(out, "{} documents, {} dimensions", documents.len(), query.len())?;
    let mut ranked: Vec<(f64, &str)> = documents.iter().map(|d| cosine(&query, d)).zip(corpus).collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    writeln!(out, "{question}")?;
    for (score, text) in ranked.iter().take(2) {
        writeln!(out, "{score:.3} {text}")?;
    }
    Ok(())
}
