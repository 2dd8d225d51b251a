//! Text embeddings on the emulator's built-in model: one text, many in order (with progress and
//! as a stream), the vector size asked for, retrieval that ranks the right document first, and
//! bad input answered with clear statuses.

mod common;

use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use yandex_cloud_ml_emulator::{FaultAction, FaultRule};
use yandex_cloud_ml_sdk::{Code, embeddings::Embedding};

fn cosine(a: &Embedding, b: &Embedding) -> f64 {
    a.as_slice().iter().zip(b.as_slice()).map(|(x, y)| x * y).sum()
}

#[tokio::test]
async fn one_text_and_the_vector_size() {
    let e = common::emulator().await;
    let sdk = common::sdk(&e);
    let doc = sdk.models().text_embeddings("doc");
    assert_eq!(doc.name(), Some("text-search-doc"));
    let v = doc.run("Paris is the capital of France").await.unwrap();
    assert_eq!(v.len(), 256);
    assert!(v.num_tokens() > 0 && !v.model_version().is_empty());
    let norm: f64 = v.as_slice().iter().map(|x| x * x).sum();
    assert!((norm - 1.0).abs() < 1e-9);
    let small = doc.configure(|c| c.dim(35)).unwrap().run("Paris").await.unwrap();
    assert_eq!(small.len(), 35);
    let request = e.control().journal().pop().unwrap().request;
    assert_eq!((request["dim"].as_str(), request["text"].as_str()), (Some("35"), Some("Paris")));
    // The query model gives another vector for the same text.
    let q = sdk.models().text_embeddings("query").run("Paris is the capital of France").await.unwrap();
    assert_ne!(q, v);
    // Serde round trip.
    let json = serde_json::to_value(&v).unwrap();
    assert_eq!(json["num_tokens"], v.num_tokens());
    assert_eq!(serde_json::from_value::<Embedding>(json).unwrap(), v);
}

#[tokio::test]
async fn retrieval_ranks_the_right_document_first() {
    let e = common::emulator().await;
    let sdk = common::sdk(&e);
    let corpus = [
        "Rust is a systems programming language with a borrow checker.",
        "Paris is the capital and largest city of France.",
        "The Volga is the longest river in Europe.",
    ];
    let docs = sdk.models().text_embeddings("doc").run_many(corpus).await.unwrap();
    let query = sdk.models().text_embeddings("query").run("What is the capital of France?").await.unwrap();
    let best =
        (0..corpus.len()).max_by(|&a, &b| cosine(&query, &docs[a]).total_cmp(&cosine(&query, &docs[b]))).unwrap();
    assert_eq!(best, 1);
}

#[tokio::test]
async fn many_texts_come_back_in_order_with_progress_and_retries() {
    // The first calls fail with UNAVAILABLE (fewer than one text's attempts): each text is
    // retried on its own.
    let e = common::start(yandex_cloud_ml_emulator::Emulator::builder().fault(
        FaultRule::new("EmbeddingsService", FaultAction::Fail { code: 14, message: "busy".into() }).first_calls(4),
    ))
    .await;
    let sdk = common::builder(&e).retry_policy(common::fast_retries()).build().unwrap();
    let model = sdk.models().text_embeddings("doc");
    let texts: Vec<String> = (0..40).map(|i| format!("text number {i}")).collect();
    let reports = Arc::new(Mutex::new(Vec::new()));
    let seen = reports.clone();
    let vectors = model
        .run_many(texts.clone())
        .concurrency(8)
        .on_progress(move |p| seen.lock().unwrap().push((p.done, p.total)))
        .await
        .unwrap();
    assert_eq!(vectors.len(), 40);
    let calls = e.control().journal().iter().filter(|j| j.method.ends_with("/TextEmbedding")).count();
    assert_eq!(calls, 44, "forty texts, four of them retried once");
    for (i, text) in texts.iter().enumerate() {
        assert_eq!(vectors[i], model.run(text.clone()).await.unwrap(), "text {i} in its place");
    }
    let reports = reports.lock().unwrap().clone();
    assert_eq!(reports.len(), 40);
    assert_eq!(reports.last(), Some(&(40, Some(40))));
    // The streamed form: texts read as needed, vectors in order, an error in its place.
    let stream = model.run_many_stream(futures_util::stream::iter(["one", "", "three"]), 2);
    let results: Vec<_> = stream.collect().await;
    assert!(results[0].is_ok() && results[2].is_ok());
    let error = results[1].as_ref().unwrap_err();
    assert_eq!(error.code(), Some(Code::InvalidArgument));
    assert!(error.message().starts_with("text 1: "), "{error}");
}

#[tokio::test]
async fn bad_input_gets_clear_statuses() {
    let e = common::emulator().await;
    let sdk = common::sdk(&e);
    let doc = sdk.models().text_embeddings("doc");
    let empty = doc.run("").await.unwrap_err();
    assert_eq!(empty.code(), Some(Code::InvalidArgument));
    assert!(empty.message().contains("empty"), "{empty}");
    let long = doc.run("word ".repeat(20_000)).await.unwrap_err();
    assert_eq!(long.code(), Some(Code::InvalidArgument));
    assert!(long.message().contains("limit of 2048 tokens"), "{long}");
    let big = doc.configure(|c| c.dim(10_000)).unwrap().run("x").await.unwrap_err();
    assert!(big.message().contains("dim: 10000"), "{big}");
    assert!(doc.configure(|c| c.dim(0)).unwrap_err().is_invalid_input());
    let unknown = sdk.models().text_embeddings("no-such-model").run("x").await.unwrap_err();
    assert_eq!(unknown.code(), Some(Code::NotFound), "{unknown}");
    let wrong_scheme = sdk.models().text_embeddings("gpt://b1g/yandexgpt/latest").run("x").await.unwrap_err();
    assert_eq!(wrong_scheme.code(), Some(Code::InvalidArgument), "{wrong_scheme}");
}
