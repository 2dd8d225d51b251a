//! The clients under test: the bare generated tonic client (the floor) and the SDK.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tonic::{metadata::AsciiMetadataValue, transport::Channel};
use yandex_cloud_ml_proto::yandex::cloud::ai::foundation_models::v1::{
    self as pb, text_generation_service_client::TextGenerationServiceClient,
};
use yandex_cloud_ml_sdk::{Sdk, completions::GptModel};

pub const FOLDER: &str = "b1gbenchfolder";
pub const API_KEY: &str = "bench-key";
pub const PROMPT: &str = "hello benchmark";
pub const STREAM_PROMPT: &str = "please stream a long answer: the quick brown fox jumps over the lazy dog and keeps running \
through the forest, across the river and over the hills until the sun goes down behind the mountains";

/// The bare generated client with the same request and credential the SDK sends.
#[derive(Clone)]
pub struct Bare {
    client: TextGenerationServiceClient<Channel>,
    auth: AsciiMetadataValue,
}

fn request(prompt: &str, stream: bool) -> pb::CompletionRequest {
    pb::CompletionRequest {
        model_uri: format!("gpt://{FOLDER}/yandexgpt/latest"),
        completion_options: Some(pb::CompletionOptions { stream, ..Default::default() }),
        messages: vec![pb::Message { role: "user".into(), content: Some(pb::message::Content::Text(prompt.into())) }],
        ..Default::default()
    }
}

impl Bare {
    pub async fn connect(endpoint: &str) -> Bare {
        let channel =
            Channel::from_shared(format!("http://{endpoint}")).expect("uri").connect().await.expect("connect");
        Bare {
            client: TextGenerationServiceClient::new(channel),
            auth: format!("Api-Key {API_KEY}").parse().expect("ascii"),
        }
    }

    fn call(&self, stream: bool, prompt: &str) -> tonic::Request<pb::CompletionRequest> {
        let mut r = tonic::Request::new(request(prompt, stream));
        r.metadata_mut().insert("authorization", self.auth.clone());
        r
    }

    /// One unary `run`: the server-streaming RPC read to its end.
    pub async fn run(mut self) -> Result<(), String> {
        let request = self.call(false, PROMPT);
        let mut stream = self.client.completion(request).await.map_err(|e| e.to_string())?.into_inner();
        let mut got = false;
        while stream.message().await.map_err(|e| e.to_string())?.is_some() {
            got = true;
        }
        if got { Ok(()) } else { Err("no response".into()) }
    }

    /// One streamed call: (time to first chunk, chunks).
    pub async fn stream(mut self) -> Result<(Duration, usize), String> {
        let started = Instant::now();
        let request = self.call(true, STREAM_PROMPT);
        let mut stream = self.client.completion(request).await.map_err(|e| e.to_string())?.into_inner();
        let mut first = None;
        let mut chunks = 0;
        while stream.message().await.map_err(|e| e.to_string())?.is_some() {
            first.get_or_insert_with(|| started.elapsed());
            chunks += 1;
        }
        Ok((first.unwrap_or_default(), chunks))
    }
}

/// The SDK pointed at the emulator.
pub fn sdk_model(endpoint: &str) -> GptModel {
    let sdk = Sdk::builder().emulator(endpoint).folder_id(FOLDER).api_key(API_KEY).build().expect("sdk");
    sdk.models().completions("yandexgpt")
}

/// Errors are reported by kind and message only, so equal failures group together.
pub async fn sdk_run(model: GptModel) -> Result<(), String> {
    model.run(PROMPT).await.map(|_| ()).map_err(|e| format!("{:?} {:?}: {}", e.kind(), e.code(), e.message()))
}

pub async fn sdk_stream(model: GptModel) -> Result<(Duration, usize), String> {
    let started = Instant::now();
    let mut stream = model.run_stream(STREAM_PROMPT).await.map_err(|e| e.to_string())?;
    let mut first = None;
    let mut chunks = 0;
    while let Some(chunk) = stream.next().await {
        chunk.map_err(|e| e.to_string())?;
        first.get_or_insert_with(|| started.elapsed());
        chunks += 1;
    }
    Ok((first.unwrap_or_default(), chunks))
}
