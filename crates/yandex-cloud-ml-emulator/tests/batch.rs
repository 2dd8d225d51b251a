//! Batch inference as a raw gRPC client sees it: sources that are not ready are refused, and a
//! finished task and its results survive a restart with a data directory.

use std::time::Duration;

use tonic::{Code, Request, transport::Channel};
use yandex_cloud_ml_emulator::{Emulator, EmulatorConfig, EmulatorHandle};
use yandex_cloud_ml_proto::yandex::cloud::ai::{
    batch_inference::v1::{self as bpb, batch_inference_service_client::BatchInferenceServiceClient},
    dataset::v1::{self as dpb, dataset_service_client::DatasetServiceClient},
    foundation_models::v1::{self as fm, text_generation_batch_service_client::TextGenerationBatchServiceClient},
};
use yandex_cloud_ml_proto::yandex::cloud::operation::{
    self as op_pb, operation_service_client::OperationServiceClient,
};

fn authorized<T>(message: T) -> Request<T> {
    let mut r = Request::new(message);
    r.metadata_mut().insert("authorization", "Api-Key test".parse().unwrap());
    r
}

async fn channel(e: &EmulatorHandle) -> Channel {
    Channel::from_shared(format!("http://{}", e.endpoint())).unwrap().connect().await.unwrap()
}

fn batch(source: &str) -> fm::BatchCompletionRequest {
    fm::BatchCompletionRequest {
        model_uri: "gpt://b1gbatch/yandexgpt/latest".into(),
        completion_options: Some(fm::CompletionOptions::default()),
        request_format: Some(fm::batch_completion_request::RequestFormat::SourceDatasetId(source.into())),
        response_format: None,
    }
}

#[tokio::test]
async fn a_source_that_is_not_ready_is_refused() {
    let e = Emulator::builder().start("127.0.0.1:0").await.unwrap();
    let ch = channel(&e).await;
    let create = dpb::CreateDatasetRequest {
        folder_id: "b1gbatch".into(),
        task_type: "TextToTextGenerationRequest".into(),
        upload_format: "jsonlines".into(),
        ..Default::default()
    };
    let draft = DatasetServiceClient::new(ch.clone()).create(authorized(create)).await.unwrap().into_inner().dataset_id;
    let status =
        TextGenerationBatchServiceClient::new(ch.clone()).completion(authorized(batch(&draft))).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(status.message().contains("is DRAFT") && status.message().contains("READY"), "{status:?}");
    let mut no_source = batch("");
    no_source.request_format = None;
    let status = TextGenerationBatchServiceClient::new(ch.clone()).completion(authorized(no_source)).await.unwrap_err();
    assert_eq!((status.code(), status.message()), (Code::InvalidArgument, "source_dataset_id: required"));
    // A schema no answer can satisfy is refused at creation, as an online request is.
    let impossible = serde_json::json!({"type": "array", "items": {"type": "string"}, "minItems": 1e9});
    let mut unsatisfiable = batch(&draft);
    unsatisfiable.response_format = Some(fm::batch_completion_request::ResponseFormat::JsonSchema(fm::JsonSchema {
        schema: Some(yandex_cloud_ml_proto::json::object_to_struct(impossible.as_object().unwrap()).unwrap()),
    }));
    let status = TextGenerationBatchServiceClient::new(ch).completion(authorized(unsatisfiable)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("minItems"), "{status:?}");
}

#[tokio::test]
async fn a_finished_task_and_its_results_survive_a_restart() {
    let dir = std::env::temp_dir().join(format!("ycml-batch-restart-{}", std::process::id()));
    let config = || EmulatorConfig { data_dir: Some(dir.clone()), ..Default::default() };
    let e = Emulator::builder().config(config()).start("127.0.0.1:0").await.unwrap();
    let ch = channel(&e).await;
    // A source dataset through the SDK-free path: create, upload, validate.
    let mut datasets = DatasetServiceClient::new(ch.clone());
    let create = dpb::CreateDatasetRequest {
        folder_id: "b1gbatch".into(),
        task_type: "TextToTextGenerationRequest".into(),
        upload_format: "jsonlines".into(),
        ..Default::default()
    };
    let id = datasets.create(authorized(create)).await.unwrap().into_inner().dataset_id;
    let body = b"{\"request\": [{\"role\": \"user\", \"text\": \"kept\"}]}\n";
    let url = datasets
        .get_upload_draft_url(authorized(dpb::GetUploadDraftUrlRequest {
            dataset_id: id.clone(),
            size_bytes: body.len() as i64,
        }))
        .await
        .unwrap()
        .into_inner()
        .upload_url;
    let uri: http::Uri = url.parse().unwrap();
    let stream = tokio::net::TcpStream::connect(uri.authority().unwrap().as_str()).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let put = http::Request::put(uri.path_and_query().unwrap().as_str())
        .header("host", uri.authority().unwrap().as_str())
        .header("content-length", body.len())
        .body(http_body_util::Full::new(bytes::Bytes::from_static(body)))
        .unwrap();
    assert!(sender.send_request(put).await.unwrap().status().is_success());
    let validation = datasets
        .validate(authorized(dpb::ValidateDatasetRequest { dataset_id: id.clone() }))
        .await
        .unwrap()
        .into_inner();
    let ready = dpb::dataset_info::Status::Ready as i32;
    while datasets
        .describe(authorized(dpb::DescribeDatasetRequest { dataset_id: id.clone() }))
        .await
        .unwrap()
        .into_inner()
        .dataset
        .unwrap()
        .status
        != ready
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let op = TextGenerationBatchServiceClient::new(ch.clone())
        .completion(authorized(batch(&id)))
        .await
        .unwrap()
        .into_inner();
    let meta: fm::BatchCompletionMetadata =
        yandex_cloud_ml_proto::unpack_any(op.metadata.as_ref().unwrap()).unwrap().unwrap();
    let mut tasks = BatchInferenceServiceClient::new(ch);
    let describe = |task_id: String| bpb::DescribeBatchInferenceRequest { task_id };
    let mut task = tasks.describe(authorized(describe(meta.task_id.clone()))).await.unwrap().into_inner().task.unwrap();
    while task.status != bpb::batch_inference_task::Status::Completed as i32 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        task = tasks.describe(authorized(describe(meta.task_id.clone()))).await.unwrap().into_inner().task.unwrap();
    }
    e.shutdown().await;

    let e = Emulator::builder().config(config()).start("127.0.0.1:0").await.unwrap();
    let ch = channel(&e).await;
    let again = BatchInferenceServiceClient::new(ch.clone())
        .describe(authorized(describe(meta.task_id.clone())))
        .await
        .unwrap()
        .into_inner()
        .task
        .unwrap();
    assert_eq!((again.status, again.result_dataset_id.clone()), (task.status, task.result_dataset_id.clone()));
    let result = DatasetServiceClient::new(ch)
        .describe(authorized(dpb::DescribeDatasetRequest { dataset_id: task.result_dataset_id }))
        .await
        .unwrap()
        .into_inner()
        .dataset
        .unwrap();
    assert_eq!((result.status, result.rows), (ready, 1));
    // The batch's operation is still pollable by its id after the restart, rebuilt from its task.
    let polled = OperationServiceClient::new(channel(&e).await)
        .get(authorized(op_pb::GetOperationRequest { operation_id: op.id.clone() }))
        .await
        .unwrap()
        .into_inner();
    let Some(op_pb::operation::Result::Response(response)) = polled.result else { panic!("{polled:?}") };
    let response: fm::BatchCompletionResponse = yandex_cloud_ml_proto::unpack_any(&response).unwrap().unwrap();
    assert_eq!(response.result_dataset_id, result.dataset_id);
    // So is the source dataset's validation, rebuilt from the dataset.
    let polled = OperationServiceClient::new(channel(&e).await)
        .get(authorized(op_pb::GetOperationRequest { operation_id: validation.id.clone() }))
        .await
        .unwrap()
        .into_inner();
    let Some(op_pb::operation::Result::Response(response)) = polled.result else { panic!("{polled:?}") };
    let response: dpb::ValidateDatasetResponse = yandex_cloud_ml_proto::unpack_any(&response).unwrap().unwrap();
    assert_eq!((response.dataset_id.as_str(), response.is_valid), (id.as_str(), true));
    e.shutdown().await;

    // Damage: the result's parquet loses its tail, the task record and a dataset record become
    // garbage. Each comes back as a failed or INVALID item that says so, none disappears.
    let parquet = dir.join("blobs/data").join(&result.dataset_id).join("main");
    let bytes = std::fs::read(&parquet).unwrap();
    std::fs::write(&parquet, &bytes[..bytes.len() / 2]).unwrap();
    std::fs::write(dir.join("batch").join(format!("{}.pb", meta.task_id)), b"\xff\xff not a record").unwrap();
    std::fs::write(dir.join("datasets").join(format!("{id}.pb")), b"\xff\xff not a record").unwrap();
    let e = Emulator::builder().config(config()).start("127.0.0.1:0").await.unwrap();
    let ch = channel(&e).await;
    let mut datasets = DatasetServiceClient::new(ch.clone());
    let describe_dataset = |dataset_id: &str| dpb::DescribeDatasetRequest { dataset_id: dataset_id.to_owned() };
    for dataset in [result.dataset_id.as_str(), id.as_str()] {
        let info =
            datasets.describe(authorized(describe_dataset(dataset))).await.unwrap().into_inner().dataset.unwrap();
        assert_eq!(info.status, dpb::dataset_info::Status::Invalid as i32, "{info:?}");
        let error = &info.validation_error[0].error_description;
        assert!(error.contains("damaged") || error.contains("bytes, not the"), "{error}");
    }
    let task = BatchInferenceServiceClient::new(ch)
        .describe(authorized(describe(meta.task_id.clone())))
        .await
        .unwrap()
        .into_inner()
        .task
        .unwrap();
    assert_eq!(task.status, bpb::batch_inference_task::Status::Failed as i32);
    assert!(task.errors.unwrap().status.unwrap().message.contains("record of this task is damaged"));
    e.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_data_dir_entry_in_the_way_is_named_in_the_error() {
    let dir = std::env::temp_dir().join(format!("ycml-blobs-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("blobs"), b"a file where a directory belongs").unwrap();
    let config = EmulatorConfig { data_dir: Some(dir.clone()), ..Default::default() };
    let Err(e) = Emulator::builder().config(config).start("127.0.0.1:0").await else { panic!("started") };
    assert!(e.to_string().contains(&format!("{} is a file", dir.join("blobs").display())), "{e}");
    let _ = std::fs::remove_dir_all(dir);
}
