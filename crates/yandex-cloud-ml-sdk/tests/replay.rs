//! Replays of real recorded traffic: the SDK must send the recorded requests and decode the
//! recorded responses.

mod common;

use yandex_cloud_ml_emulator::replay::{Cassette, ReplayServer};
use yandex_cloud_ml_sdk::{Sdk, Tls, completions::AlternativeStatus};

const FOLDER: &str = "b1ghsjum2v37c2un8h64";

async fn replay(cassette: &str) -> (ReplayServer, Sdk) {
    replay_in(Cassette::load(common::cassette(cassette)).unwrap(), FOLDER).await
}

async fn replay_in(cassette: Cassette, folder: &str) -> (ReplayServer, Sdk) {
    let server = ReplayServer::start(cassette, "127.0.0.1:0").await.unwrap();
    let sdk = Sdk::builder()
        .folder_id(folder)
        .api_key("replay")
        .discovery_endpoint(server.endpoint())
        .tls(Tls::PlaintextLoopbackOnly)
        .build()
        .unwrap();
    (server, sdk)
}

#[tokio::test]
async fn run_replays_discovery_and_completion() {
    let (server, sdk) = replay("models/test_run.gprc.json").await;
    let result = sdk.models().completions("yandexgpt").run("hello").await.unwrap();
    assert_eq!(result.text(), "Hi there! How are you?");
    assert_eq!(result.status(), AlternativeStatus::Final);
    assert_eq!(result.model_version(), "07.03.2024");
    let u = result.usage();
    assert_eq!((u.input_text_tokens, u.completion_tokens, u.total_tokens, u.reasoning_tokens), (15, 8, 23, 0));

    server.verify_requests().unwrap();
    let exchanges = server.exchanges();
    assert_eq!(exchanges.len(), 2);
    assert_eq!(exchanges[0].method, "/yandex.cloud.endpoint.ApiEndpointService/List");
    assert!(!exchanges[0].metadata.contains_key("authorization"));
    assert_eq!(exchanges[1].method, "/yandex.cloud.ai.foundation_models.v1.TextGenerationService/Completion");
    let md = &exchanges[1].metadata;
    assert_eq!(md["authorization"], "Api-Key replay");
    assert!(md["user-agent"].starts_with("yandex-cloud-ml-sdk-rust/"), "{}", md["user-agent"]);
    assert_eq!(md["x-client-request-id"].len(), 36);
    assert!(!md.contains_key("idempotency-key"), "sync completion is not mutating");
    assert_eq!(server.unused(), 0);
}

#[tokio::test]
async fn run_stream_replays_cumulative_chunks_as_deltas() {
    use futures_util::StreamExt;
    let (server, sdk) = replay("models/test_run_stream.gprc.json").await;
    let model = sdk.models().completions("yandexgpt");
    let mut stream = model.run_stream("hello! could you please tell me about platypuses?").await.unwrap();
    let (mut chunks, mut joined, mut last_usage) = (0, String::new(), 0);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        chunks += 1;
        assert!(!chunk.restated());
        joined.push_str(chunk.delta());
        assert_eq!(joined, chunk.text(), "deltas add up to the cumulative text");
        assert!(chunk.usage().completion_tokens > last_usage);
        last_usage = chunk.usage().completion_tokens;
        assert_eq!(chunk.usage().input_text_tokens, 26);
        let expected = if chunks < 21 { AlternativeStatus::Partial } else { AlternativeStatus::Final };
        assert_eq!(chunk.status(), expected);
    }
    assert_eq!(chunks, 21);
    assert_eq!(last_usage, 317);
    assert!(joined.starts_with("Platypuses, also known as duck-billed"));
    server.verify_requests().unwrap();
}

#[tokio::test]
async fn run_deferred_replays_the_operation_polls() {
    let (server, sdk) = replay("models/test_run_deferred.gprc.json").await;
    let model = sdk.models().completions("yandexgpt");
    let operation = model.run_deferred("ping").await.unwrap();
    assert_eq!(operation.id(), "d7qqr3frkl81js0udlr9");
    let result = operation.wait().poll_interval(std::time::Duration::from_millis(10)).await.unwrap();
    assert!(result.text().starts_with("**Ping**"), "{}", result.text());
    assert_eq!(result.status(), AlternativeStatus::Final);
    server.verify_requests().unwrap();
    assert_eq!(server.unused(), 0);
    let methods: Vec<String> = server.exchanges().into_iter().map(|e| e.method).collect();
    assert_eq!(methods[1], "/yandex.cloud.ai.foundation_models.v1.TextGenerationAsyncService/Completion");
    assert_eq!(methods[2], "/yandex.cloud.operation.OperationService/Get");
    let async_call = &server.exchanges()[1];
    assert_eq!(async_call.metadata["idempotency-key"].len(), 36, "mutating calls carry an idempotency key");
}

#[tokio::test]
async fn tokenize_replays_the_chat_template_tokens() {
    let (server, sdk) = replay("models/test_tokenize.gprc.json").await;
    let tokens = sdk.models().completions("yandexgpt").tokenize("ping").await.unwrap();
    assert_eq!(tokens.len(), 15);
    assert_eq!((tokens[0].id, tokens[0].text.as_str(), tokens[0].special), (1, "<s>", true));
    assert_eq!((tokens[3].id, tokens[3].text.as_str(), tokens[3].special), (45533, "▁ping", false));
    assert_eq!(tokens.iter().filter(|t| t.special).count(), 4);
    server.verify_requests().unwrap();
    assert_eq!(
        server.exchanges()[1].method,
        "/yandex.cloud.ai.foundation_models.v1.TokenizerService/TokenizeCompletion"
    );
}

fn numbers_schema() -> serde_json::Value {
    serde_json::json!({
        "title": "Numbers",
        "type": "object",
        "properties": {"numbers": {"title": "Numbers", "type": "array", "items": {"type": "integer"}}},
        "required": ["numbers"]
    })
}

#[tokio::test]
async fn text_embedding_replays_the_recorded_vector() {
    let (server, sdk) = replay("models/test_text_embeddings_run.gprc.json").await;
    let model = sdk.models().text_embeddings("doc");
    assert_eq!(model.uri(), format!("emb://{FOLDER}/text-search-doc/latest"));
    let embedding = model.run("hello").await.unwrap();
    assert_eq!(embedding.len(), 256);
    assert_eq!(
        &embedding.as_slice()[..4],
        &[0.0469970703125, 0.01800537109375, -0.002033233642578125, -0.0655517578125]
    );
    assert_eq!((embedding.num_tokens(), embedding.model_version()), (3, "06.12.2023"));
    assert_eq!(embedding.to_f32()[0], 0.046_997_07_f32);
    server.verify_requests().unwrap();
    let exchanges = server.exchanges();
    assert_eq!(exchanges[1].method, "/yandex.cloud.ai.foundation_models.v1.EmbeddingsService/TextEmbedding");
    assert!(!exchanges[1].metadata.contains_key("idempotency-key"));
    assert_eq!(server.unused(), 0);
}

#[tokio::test]
async fn function_call_round_trip_echoes_the_calls_exactly() {
    use yandex_cloud_ml_sdk::{
        completions::Message,
        tools::{FunctionTool, ToolResult},
    };
    let (server, sdk) = replay("models/test_function_call.gprc.json").await;
    let tool = FunctionTool::new("something", numbers_schema())
        .with_description("Tool which have to collect all the numbers from user message and do a SOMETHING with it");
    let model = sdk.models().completions_with_version("yandexgpt", "rc").configure(|c| c.tool(tool)).unwrap();
    let question = Message::user("do a SOMETHING with all the numbers from: 5, 4, a, 1");
    let first = model.run(question.clone()).await.unwrap();
    assert_eq!(first.status(), AlternativeStatus::ToolCalls);
    assert_eq!(first.text(), "");
    let call = first.tool_calls()[0].function().unwrap();
    assert_eq!(call.name, "something");
    #[derive(serde::Deserialize)]
    struct Args {
        numbers: Vec<i32>,
    }
    assert_eq!(call.arguments_as::<Args>().unwrap().numbers, vec![5, 4, 1]);
    assert_eq!(first.model_version(), "09.02.2025");

    let history = vec![question, Message::from(&first), Message::from(ToolResult::function("something", "+20.0"))];
    let answer = model.run(history).await.unwrap();
    assert_eq!(answer.text(), "The result of doing SOMETHING with the numbers 5, 4, and 1 is +20.0.");
    assert_eq!(answer.status(), AlternativeStatus::Final);
    server.verify_requests().unwrap();
    assert_eq!(server.unused(), 0);
}

#[tokio::test]
async fn structured_output_with_a_json_schema() {
    use yandex_cloud_ml_sdk::completions::ResponseFormat;
    let (server, sdk) = replay("models/test_structured_output_json_schema.gprc.json").await;
    let model = sdk
        .models()
        .completions_with_version("yandexgpt", "rc")
        .configure(|c| c.response_format(ResponseFormat::json_schema(numbers_schema())))
        .unwrap();
    let result = model.run("collect all numbers from: 5, 4, a, 1").await.unwrap();
    let parsed: serde_json::Value = serde_json::from_str(result.text()).unwrap();
    assert_eq!(parsed, serde_json::json!({"numbers": [5, 4, 1]}));
    server.verify_requests().unwrap();
}

#[tokio::test]
async fn schemas_of_rust_types_are_what_the_official_sdk_sends_for_pydantic_models() {
    // The recorded request was made by the Python SDK for `class Numbers(BaseModel): numbers:
    // list[int]`; the same Rust type must produce the same request.
    #[derive(serde::Deserialize, schemars::JsonSchema)]
    struct Numbers {
        numbers: Vec<i64>,
    }
    let (server, sdk) = replay("models/test_structured_output_json_schema.gprc.json").await;
    let model = sdk.models().completions_with_version("yandexgpt", "rc");
    let typed: Numbers = model.run_structured::<Numbers>("collect all numbers from: 5, 4, a, 1").await.unwrap();
    assert_eq!(typed.numbers, [5, 4, 1]);
    server.verify_requests().unwrap();
}

/// The recorded dataset file (the body of the recorded upload), written where a draft can read it.
fn recorded_upload(storage: &[yandex_cloud_ml_emulator::replay::StorageInteraction], name: &str) -> std::path::PathBuf {
    let put = storage.iter().find(|s| s.method == "PUT").expect("the recording uploads a file");
    let path = std::env::temp_dir().join(format!("ycml-replay-{}-{name}", std::process::id()));
    std::fs::write(&path, &put.request_body).unwrap();
    path
}

#[cfg(feature = "parquet")]
#[tokio::test]
async fn dataset_upload_validation_and_read_replay_the_recording() {
    use futures_util::StreamExt;
    use yandex_cloud_ml_sdk::datasets::{CompletionRecord, DatasetStatus};
    let storage = common::storage_cassette("datasets/test_simple_read.yaml");
    let file = recorded_upload(&storage, "simple_read.jsonl");
    let cassette =
        Cassette::load(common::cassette("datasets/test_simple_read.gprc.json")).unwrap().with_storage(storage);
    let (server, sdk) = replay_in(cassette, FOLDER).await;
    let dataset = sdk
        .datasets()
        .completions()
        .draft_from_path(&file)
        .name("852bd7a5-a245-4ea9-8458-2d45f0f09efb")
        .upload()
        .poll_interval(std::time::Duration::from_millis(10))
        .await
        .unwrap();
    assert_eq!(dataset.id(), "fdsq0jr7e60uuq8adbhb");
    assert_eq!((dataset.status(), dataset.info().rows, dataset.info().size_bytes), (DatasetStatus::Ready, 3, 3514));

    // The cloud's own parquet file, read.
    let records: Vec<CompletionRecord> = dataset.read_as::<CompletionRecord>().map(Result::unwrap).collect().await;
    assert_eq!(records.len(), 3);
    assert_eq!(records[2].response.as_deref(), Some("В Перми."));
    let roles: Vec<&str> = records[0].request.iter().map(|m| m.role.as_str()).collect();
    assert_eq!(roles, ["system", "user"]);
    assert_eq!(records[0].request[1].text, "Как тебя зовут?");

    dataset.delete().await.unwrap();
    server.verify_requests().unwrap();
    assert_eq!(server.storage_exchanges().len(), 2, "one PUT, one GET");
    assert_eq!(server.unused(), 0);
    let _ = std::fs::remove_file(file);
}

#[tokio::test]
async fn the_dataset_part_of_the_tuning_recording_replays() {
    use yandex_cloud_ml_sdk::datasets::{DatasetStatus, TaskType};
    let storage = common::storage_cassette("tuning/test_tuning_embeddings_pair.yaml");
    let file = recorded_upload(&storage, "pair.jsonl");
    // Discovery, Create, GetUploadDraftUrl, Validate, three polls (as the Python SDK made),
    // Describe; `the_embeddings_tuning_recording_replays_end_to_end` goes on from there.
    let cassette = Cassette::load_first(common::cassette("tuning/test_tuning_embeddings_pair.gprc.json"), 8)
        .unwrap()
        .with_storage(storage);
    let (server, sdk) = replay_in(cassette, "b1ge6b3ojkeeciv997a8").await;
    let dataset = sdk
        .datasets()
        .text_embeddings_pair()
        .draft_from_path(&file)
        .name("pair")
        .upload()
        .poll_interval(std::time::Duration::from_millis(10))
        .await
        .unwrap();
    assert_eq!((dataset.status(), dataset.info().rows), (DatasetStatus::Ready, 1));
    assert_eq!(dataset.info().task_type, TaskType::TextEmbeddingsPair);
    server.verify_requests().unwrap();
    assert_eq!(server.exchanges().len(), 8);
    assert_eq!(server.unused(), 0);
    let _ = std::fs::remove_file(file);
}

#[tokio::test]
async fn the_embeddings_tuning_recording_replays_end_to_end() {
    use yandex_cloud_ml_sdk::tuning::EmbeddingsTuneType;
    let storage = common::storage_cassette("tuning/test_tuning_embeddings_pair.yaml");
    let file = recorded_upload(&storage, "pair-tune.jsonl");
    let cassette =
        Cassette::load(common::cassette("tuning/test_tuning_embeddings_pair.gprc.json")).unwrap().with_storage(storage);
    let (server, sdk) = replay_in(cassette, "b1ge6b3ojkeeciv997a8").await;
    let fast = std::time::Duration::from_millis(10);
    let dataset = sdk
        .datasets()
        .text_embeddings_pair()
        .draft_from_path(&file)
        .name("pair")
        .upload()
        .poll_interval(fast)
        .await
        .unwrap();
    let base = sdk.models().text_embeddings("text-embeddings");
    let tuned = base
        .tune(&dataset, EmbeddingsTuneType::Pair)
        .validation(&dataset)
        .name("test")
        .poll_interval(fast)
        .await
        .unwrap();
    assert_eq!(tuned.uri(), "emb://b1ge6b3ojkeeciv997a8/text-embeddings/latest@tamrgk8grnr1o01b2h96u");
    let vector = tuned.run("hi").await.unwrap();
    assert_eq!((vector.len(), vector.num_tokens(), vector.model_version()), (256, 2, "29.08.2024"));
    assert_eq!(vector.as_slice()[0], 0.101188525557518);
    server.verify_requests().unwrap();
    let exchanges = server.exchanges();
    let methods: Vec<&str> = exchanges.iter().map(|e| e.method.rsplit('/').next().unwrap_or_default()).collect();
    assert_eq!(methods.iter().filter(|m| **m == "Tune").count(), 1);
    assert_eq!(methods.last(), Some(&"TextEmbedding"));
    // The Python SDK polled on after the tuning was done and described the task for its URI;
    // the response already names the model, so this SDK stops at the first done poll.
    assert!(server.unused() >= 1, "{methods:?}");
    let _ = std::fs::remove_file(file);
}

#[tokio::test]
async fn a_batch_run_replays_the_recording_end_to_end() {
    use yandex_cloud_ml_sdk::{batch::BatchStatus, datasets::DatasetStatus};
    let storage = common::storage_cassette("batch/test_simple_run.yaml");
    let file = recorded_upload(&storage, "batch.jsonl");
    let cassette = Cassette::load(common::cassette("batch/test_simple_run.gprc.json")).unwrap().with_storage(storage);
    let (server, sdk) = replay_in(cassette, FOLDER).await;
    let fast = std::time::Duration::from_millis(5);
    let source = sdk
        .datasets()
        .batch_requests()
        .draft_from_path(&file)
        .name("43327620-deca-4f8c-840a-4d874df618ea")
        .upload()
        .poll_interval(fast)
        .await
        .unwrap();
    assert_eq!((source.id(), source.info().rows), ("fds3dei2ej0kmd50ab2e", 3));
    let task = sdk.models().completions("gemma-3-12b-it").batch().run_deferred(&source).await.unwrap();
    assert_eq!(task.id(), "fbi0lliaben2rvd22sp2", "a batch is known by its task id, not its operation id");
    let result = task.wait().poll_interval(fast).await.unwrap();
    assert_eq!(result.id(), "fds54eahbh8tbd2en619");
    assert_eq!(result.status(), DatasetStatus::Ready);
    assert_eq!(result.info().labels["foundation_models_batch_task_id"], task.id());
    result.delete().await.unwrap();
    source.delete().await.unwrap();

    server.verify_requests().unwrap();
    // The recording polls the task 27 times until it is COMPLETED and then describes it once
    // more to get the result; this SDK takes the result from the poll that saw COMPLETED, so
    // that last recorded Describe is the one call it does not make.
    let describes = server.exchanges().iter().filter(|e| e.method.ends_with("BatchInferenceService/Describe")).count();
    assert_eq!((describes, server.unused()), (27, 1));
    // That recorded Describe still decodes.
    assert_eq!(task.status().await.unwrap(), BatchStatus::Completed);
    assert_eq!(server.unused(), 0);
    let _ = std::fs::remove_file(file);
}
