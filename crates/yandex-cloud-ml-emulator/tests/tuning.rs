//! `TuningService/Tune` requests the emulator refuses before a task exists, sent through the
//! generated client (the SDK refuses some of them itself).

use tonic::{Code, Request, transport::Channel};
use yandex_cloud_ml_emulator::Emulator;
use yandex_cloud_ml_proto::yandex::cloud::ai::tuning::v1::{
    self as pb,
    tuning_request::{TuningParams, WeightedDataset},
    tuning_service_client::TuningServiceClient,
};

fn authorized<T>(message: T) -> Request<T> {
    let mut r = Request::new(message);
    r.metadata_mut().insert("authorization", "Api-Key test".parse().unwrap());
    r
}

fn dataset(id: &str) -> WeightedDataset {
    WeightedDataset { dataset_id: id.into(), weight: 1.0 }
}

fn request() -> pb::TuningRequest {
    pb::TuningRequest {
        base_model_uri: "gpt://b1gtuning/yandexgpt-lite/latest".into(),
        train_datasets: vec![dataset("fdstrain")],
        tuning_params: Some(TuningParams::TextToTextCompletion(Default::default())),
        ..Default::default()
    }
}

#[tokio::test]
async fn tune_requests_that_cannot_start_are_refused_with_the_field() {
    let emulator = Emulator::builder().start("127.0.0.1:0").await.unwrap();
    let channel = Channel::from_shared(format!("http://{}", emulator.endpoint())).unwrap().connect().await.unwrap();
    let mut client = TuningServiceClient::new(channel);
    let cases = [
        // (A tuned model that exists is refused as a base too: the SDK's tuning test.)
        (
            pb::TuningRequest { base_model_uri: "gpt://b1gtuning/yandexgpt-lite/latest@tamsuffix".into(), ..request() },
            Code::NotFound,
            "model gpt://b1gtuning/yandexgpt-lite/latest@tamsuffix not found",
        ),
        (
            pb::TuningRequest {
                tuning_params: Some(TuningParams::TextEmbeddingPairParams(Default::default())),
                ..request()
            },
            Code::InvalidArgument,
            "model_uri: invalid model uri `gpt://b1gtuning/yandexgpt-lite/latest`; expected emb://<folder_id>/<model>/<version>",
        ),
        (
            pb::TuningRequest {
                tuning_params: Some(TuningParams::TextClassificationMultilabel(Default::default())),
                ..request()
            },
            Code::Unimplemented,
            "the emulator tunes completion and embeddings models (text classifiers are not served)",
        ),
        (
            pb::TuningRequest { train_datasets: vec![], ..request() },
            Code::InvalidArgument,
            "train_datasets: at least one dataset is required",
        ),
        (
            pb::TuningRequest { train_datasets: vec![dataset("fds"); 101], ..request() },
            Code::InvalidArgument,
            "train_datasets: at most 100 datasets, got 101",
        ),
        (
            pb::TuningRequest {
                train_datasets: vec![WeightedDataset { dataset_id: "fds".into(), weight: -1.0 }],
                ..request()
            },
            Code::InvalidArgument,
            "train_datasets[0].weight: must be a number ≥ 0, got -1",
        ),
        (
            pb::TuningRequest { name: "ab".into(), ..request() },
            Code::InvalidArgument,
            "name: 3 to 100 characters of letters, digits, spaces, `_` and `-` (or leave it empty)",
        ),
    ];
    for (r, code, message) in cases {
        let status = client.tune(authorized(r)).await.unwrap_err();
        assert_eq!((status.code(), status.message()), (code, message));
    }
    assert!(emulator.control().operations().is_empty(), "no task was started");
}
