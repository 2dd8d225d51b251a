//! Retrieval with rig on Yandex models (here the in-process emulator): the documents are
//! embedded with the `doc` model into rig's in-memory vector store, searched with the `query`
//! model, and an agent answers with the best document as context. Run with
//! `cargo run -p yandex-cloud-ml-rig --example rig_retrieval`.

use rig_agent::AgentBuilder;
use rig_core::{
    embeddings::EmbeddingsBuilder,
    vector_store::{VectorSearchRequest, VectorStoreIndex, in_memory_store::InMemoryVectorStore},
};
use yandex_cloud_ml_emulator::Emulator;
use yandex_cloud_ml_rig::RigExt;
use yandex_cloud_ml_sdk::Sdk;

#[tokio::main]
pub async fn main() -> Result<(), Box<dyn std::error::Error>> {
    run(&mut std::io::stdout()).await
}

/// The example, writing what it shows to `out` (stdout when run; a buffer in the tests).
pub async fn run(out: &mut dyn std::io::Write) -> Result<(), Box<dyn std::error::Error>> {
    let emulator = Emulator::builder().start("127.0.0.1:0").await?;
    // With real credentials: `Sdk::from_env()?`.
    let sdk = Sdk::builder().emulator(emulator.endpoint()).build()?;
    let documents = sdk.models().text_embeddings("doc").rig();
    let queries = sdk.models().text_embeddings("query").rig();

    let corpus: Vec<String> = vec![
        "Paris is the capital and largest city of France.".into(),
        "The Volga is the longest river in Europe.".into(),
        "Rust is a programming language with a borrow checker.".into(),
    ];
    let embedded = EmbeddingsBuilder::new(documents).documents(corpus)?.build().await?;
    writeln!(out, "embedded {} documents", embedded.len())?;
    let index = InMemoryVectorStore::from_documents(embedded).index(queries);

    let question = "What is the capital of France?";
    let request = VectorSearchRequest::builder().query(question).samples(1).build();
    for hit in index.top_n::<String>(request).await? {
        writeln!(out, "best match: {} ({:.2})", hit.document, hit.score)?;
    }

    // The agent looks the question up in the index and gets the best document as context.
    let model = sdk.models().completions("yandexgpt");
    let agent = AgentBuilder::new(model.rig()).preamble("Answer from the context.").dynamic_context(1, index).build();
    let answer = agent.prompt(question).await?;
    // (The emulator's built-in model echoes what it was sent: the context, then the question.)
    writeln!(out, "answer: {}", answer.output().replace('\n', " "))?;
    let sent = emulator.control().journal();
    let context_sent = sent
        .iter()
        .filter(|j| j.method.ends_with("TextGenerationService/Completion"))
        .any(|j| j.request.to_string().contains("Paris is the capital"));
    writeln!(out, "the context reached the model: {context_sent}")?;
    Ok(())
}
