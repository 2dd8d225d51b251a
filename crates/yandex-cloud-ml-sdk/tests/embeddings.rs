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

async fn upload_rows(
    sdk: &yandex_cloud_ml_sdk::Sdk,
    task: yandex_cloud_ml_sdk::datasets::TaskType,
    rows: &[serde_json::Value],
) -> yandex_cloud_ml_sdk::datasets::Dataset {
    let path = std::env::temp_dir().join(format!("ycml-embeddings-{}-{}.jsonl", std::process::id(), fastrand_suffix()));
    std::fs::write(&path, rows.iter().map(|r| r.to_string()).collect::<Vec<_>>().join("\n")).unwrap();
    let dataset = sdk
        .datasets()
        .draft_from_path(&path)
        .task_type(task)
        .upload()
        .poll_interval(std::time::Duration::from_millis(10))
        .await
        .unwrap();
    let _ = std::fs::remove_file(path);
    dataset
}

fn fastrand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

#[tokio::test]
async fn tuning_on_pairs_brings_them_closer_in_the_sizes_asked_for() {
    use yandex_cloud_ml_sdk::{datasets::TaskType, tuning::EmbeddingsTuneType};
    let e = common::emulator().await;
    let sdk = common::sdk(&e);
    let pairs = upload_rows(
        &sdk,
        TaskType::TextEmbeddingsPair,
        &[
            serde_json::json!({"anchor": "hello", "positive": "hi"}),
            serde_json::json!({"anchor": "goodbye", "positive": "farewell"}),
        ],
    )
    .await;
    let base = sdk.models().text_embeddings("text-embeddings");
    let fast = std::time::Duration::from_millis(10);
    let task =
        base.tune_deferred(&pairs, EmbeddingsTuneType::Pair).embedding_dims([35, 128]).name("pairs").await.unwrap();
    let tuned = task.wait().poll_interval(fast).await.unwrap();
    assert!(tuned.uri().starts_with("emb://b1gemulatorfolder000/text-embeddings/latest@"), "{}", tuned.uri());
    assert_eq!(tuned.fine_tuned(), Some(true));
    let request = e.control().journal().into_iter().find(|j| j.method.ends_with("TuningService/Tune")).unwrap().request;
    assert_eq!(request["textEmbeddingPairParams"]["embeddingDims"], serde_json::json!(["35", "128"]), "{request}");
    // The largest size by default, the other on request, and no other.
    let hello = tuned.run("hello").await.unwrap();
    assert_eq!(hello.len(), 128);
    assert_eq!(tuned.configure(|c| c.dim(35)).unwrap().run("hello").await.unwrap().len(), 35);
    let other = tuned.configure(|c| c.dim(64)).unwrap().run("hello").await.unwrap_err();
    assert!(other.message().contains("one of 35, 128"), "{other}");
    // The pair is closer than through the base model.
    let base128 = base.configure(|c| c.dim(128)).unwrap();
    let before = cosine(&base128.run("hello").await.unwrap(), &base128.run("hi").await.unwrap());
    let after = cosine(&hello, &tuned.run("hi").await.unwrap());
    assert!(after > before + 0.3, "before {before}, after {after}");
    // Re-attached by id; `sdk.tuning().get` is typed for completions and says how to get it.
    let again = base.attach_tune_deferred(task.id()).wait().poll_interval(fast).await.unwrap();
    assert_eq!(again.uri(), tuned.uri());
    let as_completion = sdk.tuning().get(task.id()).await.unwrap();
    let wrong = as_completion.result().await.unwrap_err();
    assert!(wrong.message().contains("task.embeddings()"), "{wrong}");
    assert_eq!(as_completion.embeddings().result().await.unwrap().uri(), tuned.uri());
    // The tuned suffix does not serve completions.
    let suffix = tuned.uri().rsplit('@').next().unwrap();
    let as_gpt = sdk.models().completions(&format!("gpt://b1gemulatorfolder000/text-embeddings/latest@{suffix}"));
    assert_eq!(as_gpt.run("hello").await.unwrap_err().code(), Some(Code::NotFound));
}

#[tokio::test]
async fn triplets_and_datasets_of_the_wrong_kind() {
    use yandex_cloud_ml_sdk::{datasets::TaskType, tuning::EmbeddingsTuneType};
    let e = common::emulator().await;
    let sdk = common::sdk(&e);
    let fast = std::time::Duration::from_millis(10);
    let triplets = upload_rows(
        &sdk,
        TaskType::TextEmbeddingsTriplet,
        &[serde_json::json!({"anchor": "hello", "positive": "hi", "negative": "goodbye"})],
    )
    .await;
    let base = sdk.models().text_embeddings("text-embeddings");
    let tuned = base.tune(&triplets, EmbeddingsTuneType::Triplet).poll_interval(fast).await.unwrap();
    assert_eq!(tuned.run("hello").await.unwrap().len(), 256);
    let before = cosine(&base.run("hello").await.unwrap(), &base.run("goodbye").await.unwrap());
    let after = cosine(&tuned.run("hello").await.unwrap(), &base.run("goodbye").await.unwrap());
    assert!(after < before, "the negative moved away: {before} → {after}");
    // Triplet rows given as pairs: refused, naming the task type.
    let wrong = base.tune(&triplets, EmbeddingsTuneType::Pair).poll_interval(fast).await.unwrap_err();
    assert!(wrong.message().contains("TextEmbeddingsPair"), "{wrong}");
    // A completion model cannot be tuned with embeddings parameters, nor the other way round.
    let gpt = sdk.models().completions("yandexgpt-lite");
    let completion_rows = gpt.tune(&triplets).poll_interval(fast).await.unwrap_err();
    assert!(completion_rows.message().contains("TextToTextGeneration"), "{completion_rows}");
    // A scheduler's warm-up ratio of 0 is sent (the embeddings' field is optional).
    use yandex_cloud_ml_sdk::tuning::{Scheduler, TuneParams};
    let params = TuneParams::default().scheduler(Scheduler::linear(0.0));
    base.tune_deferred(&triplets, EmbeddingsTuneType::Triplet).params(params).await.unwrap();
    let sent = e.control().journal().into_iter().rfind(|j| j.method.ends_with("TuningService/Tune")).unwrap();
    let scheduler = &sent.request["textEmbeddingTripletParams"]["scheduler"];
    assert_eq!(scheduler["warmupRatio"], 0.0, "{scheduler}");
    let dims = base.tune_deferred(&triplets, EmbeddingsTuneType::Triplet).embedding_dims([0]).await.unwrap_err();
    assert!(dims.is_invalid_input(), "{dims}");
    let too_big = base.tune_deferred(&triplets, EmbeddingsTuneType::Triplet).embedding_dims([4096]).await.unwrap_err();
    assert_eq!(too_big.code(), Some(Code::InvalidArgument), "{too_big}");
}
