//! The emulator embedding with a real model (feature `local-model`): all-MiniLM-L6-v2, fetched
//! on first use by `scripts/fetch-embedding-model.sh` (or `$YCML_EMBEDDING_MODEL`). Its vectors
//! are compared with those of an independent reference for the same weights
//! (`scripts/embedding-reference.py`: BERT written out in numpy, checked against the cosines
//! sentence-transformers publishes for this model), recorded in `testdata/embeddings/`.
#![cfg(feature = "local-model")]

mod support;

use serde_json::Value;
use tonic::{Code, transport::Channel};
use yandex_cloud_ml_emulator::{Emulator, EmulatorConfig, EmulatorHandle};
use yandex_cloud_ml_proto::yandex::cloud::ai::foundation_models::v1::{
    self as pb, embeddings_service_client::EmbeddingsServiceClient,
};

async fn emulator(test: &str) -> Option<EmulatorHandle> {
    let dir = support::embedding_model(test)?;
    let config = EmulatorConfig { embedding_model: Some(dir), ..Default::default() };
    Some(Emulator::builder().config(config).start("127.0.0.1:0").await.unwrap())
}

async fn embed(
    e: &EmulatorHandle,
    model: &str,
    text: &str,
    dim: Option<i64>,
) -> Result<pb::TextEmbeddingResponse, tonic::Status> {
    let channel = Channel::from_shared(format!("http://{}", e.endpoint())).unwrap().connect().await.unwrap();
    let mut request = tonic::Request::new(pb::TextEmbeddingRequest {
        model_uri: format!("emb://b1gemulatorfolder000/{model}/latest"),
        text: text.into(),
        dim,
    });
    request.metadata_mut().insert("authorization", "Api-Key test".parse().unwrap());
    EmbeddingsServiceClient::new(channel).text_embedding(request).await.map(tonic::Response::into_inner)
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[tokio::test]
async fn vectors_equal_the_reference_for_the_same_weights() {
    let Some(e) = emulator("vectors_equal_the_reference_for_the_same_weights").await else { return };
    let reference = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata/embeddings/all-minilm-l6-v2-reference.jsonl"),
    )
    .unwrap();
    let mut checked = 0;
    for line in reference.lines() {
        let row: Value = serde_json::from_str(line).unwrap();
        let text = row["text"].as_str().unwrap();
        let expected: Vec<f64> = row["embedding"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
        let got = embed(&e, "text-search-doc", text, None).await.unwrap();
        assert_eq!(got.embedding.len(), 384);
        let worst = got.embedding.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        assert!(worst < 1e-4, "{text}: off by {worst}");
        assert_eq!(got.model_version, "all-MiniLM-L6-v2");
        checked += 1;
    }
    assert_eq!(checked, 5, "Cyrillic included");
    // The cosines sentence-transformers documents for this model.
    let weather = embed(&e, "text-search-doc", "The weather is lovely today.", None).await.unwrap().embedding;
    let sunny = embed(&e, "text-search-query", "It's so sunny outside!", None).await.unwrap().embedding;
    let stadium = embed(&e, "text-search-doc", "He drove to the stadium.", None).await.unwrap().embedding;
    assert!((cosine(&weather, &sunny) - 0.6660).abs() < 1e-3);
    assert!((cosine(&weather, &stadium) - 0.1046).abs() < 1e-3);
}

#[tokio::test]
async fn retrieval_ranks_the_right_document_first() {
    let Some(e) = emulator("retrieval_ranks_the_right_document_first").await else { return };
    let documents = [
        "The Eiffel Tower stands in Paris.",
        "Photosynthesis turns sunlight into chemical energy in plants.",
        "The stock market fell sharply on Monday.",
    ];
    let mut vectors = Vec::new();
    for d in documents {
        vectors.push(embed(&e, "text-search-doc", d, None).await.unwrap().embedding);
    }
    let query = embed(&e, "text-search-query", "How do plants make energy from light?", None).await.unwrap().embedding;
    let best = (0..3).max_by(|&a, &b| cosine(&query, &vectors[a]).total_cmp(&cosine(&query, &vectors[b]))).unwrap();
    assert_eq!(best, 1);
}

#[tokio::test]
async fn sizes_and_lengths_the_model_cannot_do_are_refused() {
    let Some(e) = emulator("sizes_and_lengths_the_model_cannot_do_are_refused").await else { return };
    let other = embed(&e, "text-search-doc", "hello", Some(256)).await.unwrap_err();
    assert_eq!(other.code(), Code::InvalidArgument);
    assert!(other.message().contains("dim: 256 is not a size this model gives"), "{other:?}");
    let long = embed(&e, "text-search-doc", &"word ".repeat(300), None).await.unwrap_err();
    assert_eq!(long.code(), Code::InvalidArgument);
    assert!(long.message().contains("more than the model's limit of 256 tokens"), "{long:?}");
}

#[tokio::test]
async fn a_bad_model_directory_is_refused_at_start_with_the_reason() {
    let missing = EmulatorConfig { embedding_model: Some("/no/such/model".into()), ..Default::default() };
    let error = Emulator::builder().config(missing).start("127.0.0.1:0").await.unwrap_err();
    assert!(error.to_string().contains("/no/such/model is not a directory"), "{error}");
    let dir = std::env::temp_dir().join(format!("ycml-bad-embedding-model-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.json"), "{not json").unwrap();
    let broken = EmulatorConfig { embedding_model: Some(dir.clone()), ..Default::default() };
    let error = Emulator::builder().config(broken).start("127.0.0.1:0").await.unwrap_err();
    assert!(error.to_string().contains("config.json: not a BERT configuration"), "{error}");
    let _ = std::fs::remove_dir_all(dir);
}
