//! One admission path for every method: each fault action on each service, credentials kept
//! out of the journal, and the services listed by gRPC reflection.

use std::time::{Duration, Instant};

use tonic::{Code, Request, Status, transport::Channel};
use yandex_cloud_ml_emulator::{Emulator, EmulatorHandle, FaultAction, FaultRule, OperationPolicy};
use yandex_cloud_ml_proto::yandex::cloud::{
    ai::foundation_models::v1::{
        self as pb, text_generation_async_service_client::TextGenerationAsyncServiceClient,
        text_generation_service_client::TextGenerationServiceClient, tokenizer_service_client::TokenizerServiceClient,
    },
    endpoint::{self as endpoint_pb, api_endpoint_service_client::ApiEndpointServiceClient},
    iam::v1::{self as iam, iam_token_service_client::IamTokenServiceClient},
    operation::{self as op_pb, operation_service_client::OperationServiceClient},
};

async fn start(builder: yandex_cloud_ml_emulator::EmulatorBuilder) -> (EmulatorHandle, Channel) {
    let emulator = builder.start("127.0.0.1:0").await.unwrap();
    let channel = Channel::from_shared(format!("http://{}", emulator.endpoint())).unwrap().connect().await.unwrap();
    (emulator, channel)
}

fn authorized<T>(message: T) -> Request<T> {
    let mut r = Request::new(message);
    r.metadata_mut().insert("authorization", "Api-Key test".parse().unwrap());
    r
}

fn completion(stream: bool) -> pb::CompletionRequest {
    pb::CompletionRequest {
        model_uri: "gpt://b1gfolder/yandexgpt/latest".into(),
        completion_options: Some(pb::CompletionOptions { stream, ..Default::default() }),
        messages: vec![pb::Message {
            role: "user".into(),
            content: Some(pb::message::Content::Text("one two three four five six seven eight".into())),
        }],
        ..Default::default()
    }
}

/// The methods of every service, as fault rules name them, with one call of each.
const METHODS: [&str; 11] = [
    "ApiEndpointService/List",
    "ApiEndpointService/Get",
    "IamTokenService/Create",
    "IamTokenService/CreateForServiceAccount",
    "IamTokenService/Revoke",
    "OperationService/Get",
    "OperationService/Cancel",
    "TextGenerationService/Completion",
    "TextGenerationAsyncService/Completion",
    "TokenizerService/Tokenize",
    "TokenizerService/TokenizeCompletion",
];

/// Makes one call of `method`; returns its status. Preparations (an operation to poll, a token
/// to revoke) are made with other methods, which the fault rules do not match.
async fn call(channel: &Channel, method: &str) -> Result<(), Status> {
    let c = channel.clone();
    match method {
        "ApiEndpointService/List" => {
            ApiEndpointServiceClient::new(c).list(endpoint_pb::ListApiEndpointsRequest::default()).await.map(drop)
        }
        "ApiEndpointService/Get" => ApiEndpointServiceClient::new(c)
            .get(endpoint_pb::GetApiEndpointRequest { api_endpoint_id: "iam".into() })
            .await
            .map(drop),
        "IamTokenService/Create" => IamTokenServiceClient::new(c)
            .create(iam::CreateIamTokenRequest {
                identity: Some(iam::create_iam_token_request::Identity::YandexPassportOauthToken("y0_x".into())),
            })
            .await
            .map(drop),
        "IamTokenService/CreateForServiceAccount" => IamTokenServiceClient::new(c)
            .create_for_service_account(authorized(iam::CreateIamTokenForServiceAccountRequest {
                service_account_id: "ajeaccount".into(),
            }))
            .await
            .map(drop),
        "IamTokenService/Revoke" => {
            let token = IamTokenServiceClient::new(c.clone())
                .create_for_service_account(authorized(iam::CreateIamTokenForServiceAccountRequest {
                    service_account_id: "ajeaccount".into(),
                }))
                .await?
                .into_inner()
                .iam_token;
            IamTokenServiceClient::new(c)
                .revoke(authorized(iam::RevokeIamTokenRequest { iam_token: token }))
                .await
                .map(drop)
        }
        "OperationService/Get" | "OperationService/Cancel" => {
            let id = TextGenerationAsyncServiceClient::new(c.clone())
                .completion(authorized(completion(false)))
                .await?
                .into_inner()
                .id;
            let mut ops = OperationServiceClient::new(c);
            if method.ends_with("Get") {
                ops.get(authorized(op_pb::GetOperationRequest { operation_id: id })).await.map(drop)
            } else {
                ops.cancel(authorized(op_pb::CancelOperationRequest { operation_id: id })).await.map(drop)
            }
        }
        "TextGenerationService/Completion" => {
            let mut stream =
                TextGenerationServiceClient::new(c).completion(authorized(completion(false))).await?.into_inner();
            while stream.message().await?.is_some() {}
            Ok(())
        }
        "TextGenerationAsyncService/Completion" => {
            TextGenerationAsyncServiceClient::new(c).completion(authorized(completion(false))).await.map(drop)
        }
        "TokenizerService/Tokenize" => TokenizerServiceClient::new(c)
            .tokenize(authorized(pb::TokenizeRequest {
                model_uri: "gpt://b1gfolder/yandexgpt/latest".into(),
                text: "hi".into(),
            }))
            .await
            .map(drop),
        "TokenizerService/TokenizeCompletion" => {
            TokenizerServiceClient::new(c).tokenize_completion(authorized(completion(false))).await.map(drop)
        }
        other => panic!("unknown method {other}"),
    }
}

#[tokio::test]
async fn fail_lose_response_and_delay_hit_every_method_of_every_service() {
    let (emulator, channel) = start(Emulator::builder().operations(OperationPolicy::Immediate)).await;
    let control = emulator.control();
    for method in METHODS {
        call(&channel, method).await.unwrap_or_else(|s| panic!("{method} works: {s}"));

        control
            .add_fault(FaultRule::new(method, FaultAction::Fail { code: 8, message: "quota".into() }).first_calls(1))
            .unwrap();
        let status = call(&channel, method).await.unwrap_err();
        assert_eq!((status.code(), status.message()), (Code::ResourceExhausted, "quota"), "{method}");
        call(&channel, method).await.unwrap_or_else(|s| panic!("{method} recovers: {s}"));
        control.clear_faults();

        let before = control.journal().len();
        control.add_fault(FaultRule::new(method, FaultAction::LoseResponse { code: 14 }).first_calls(1)).unwrap();
        let status = call(&channel, method).await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable, "{method}: {status}");
        assert!(status.message().contains("response lost"), "{method}: {status}");
        assert!(control.journal().len() > before, "{method}: the call was received and done");
        control.clear_faults();

        control.add_fault(FaultRule::new(method, FaultAction::Delay { ms: 120 }).first_calls(1)).unwrap();
        let started = Instant::now();
        call(&channel, method).await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(120), "{method} delayed");
        control.clear_faults();
    }
}

#[tokio::test]
async fn a_lost_response_still_does_the_work() {
    let (emulator, channel) = start(Emulator::builder()).await;
    let control = emulator.control();
    control
        .add_fault(
            FaultRule::new("TextGenerationAsyncService/Completion", FaultAction::LoseResponse { code: 14 })
                .first_calls(1),
        )
        .unwrap();
    assert!(call(&channel, "TextGenerationAsyncService/Completion").await.is_err());
    assert_eq!(control.operations().len(), 1, "the operation was created although the answer was lost");
}

#[tokio::test]
async fn stream_faults_and_lost_streams_with_paced_chunks() {
    let (emulator, channel) = start(Emulator::builder().stream_chunk_delay(Duration::from_millis(5))).await;
    let control = emulator.control();
    let method = "TextGenerationService/Completion";
    let mut client = TextGenerationServiceClient::new(channel.clone());
    let chunks_then_error = |mut stream: tonic::Streaming<pb::CompletionResponse>| async move {
        let mut n = 0;
        loop {
            match stream.message().await {
                Ok(Some(_)) => n += 1,
                Ok(None) => return (n, None),
                Err(s) => return (n, Some(s)),
            }
        }
    };

    control.add_fault(FaultRule::new(method, FaultAction::CutStream { after_chunks: 2, code: 14 })).unwrap();
    let stream = client.completion(authorized(completion(true))).await.unwrap().into_inner();
    let (n, error) = chunks_then_error(stream).await;
    assert_eq!((n, error.map(|s| s.code())), (2, Some(Code::Unavailable)));
    control.clear_faults();

    control.add_fault(FaultRule::new(method, FaultAction::StallStream { after_chunks: 1 })).unwrap();
    let mut request = authorized(completion(true));
    request.set_timeout(Duration::from_millis(300));
    let stream = client.completion(request).await.unwrap().into_inner();
    let (n, error) = chunks_then_error(stream).await;
    assert_eq!(n, 1);
    assert!(matches!(error.map(|s| s.code()), Some(Code::DeadlineExceeded | Code::Cancelled)));
    control.clear_faults();

    // A lost response on a paced stream: the whole answer is generated, the client gets the error.
    control.add_fault(FaultRule::new(method, FaultAction::LoseResponse { code: 14 })).unwrap();
    let status = client.completion(authorized(completion(true))).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    control.clear_faults();
}

#[tokio::test]
async fn operation_faults_and_expired_tokens() {
    let (emulator, channel) = start(Emulator::builder().operations(OperationPolicy::Immediate)).await;
    let control = emulator.control();
    control
        .add_fault(FaultRule::new(
            "TextGenerationAsyncService/Completion",
            FaultAction::FailOperation { code: 13, message: "model crashed".into() },
        ))
        .unwrap();
    let op = TextGenerationAsyncServiceClient::new(channel.clone())
        .completion(authorized(completion(false)))
        .await
        .unwrap()
        .into_inner();
    let mut ops = OperationServiceClient::new(channel.clone());
    let polled = ops.get(authorized(op_pb::GetOperationRequest { operation_id: op.id })).await.unwrap().into_inner();
    assert!(matches!(polled.result, Some(op_pb::operation::Result::Error(e)) if e.message == "model crashed"));
    control.clear_faults();

    control
        .add_fault(FaultRule::new("TextGenerationAsyncService/Completion", FaultAction::SlowOperation { polls: 3 }))
        .unwrap();
    let op = TextGenerationAsyncServiceClient::new(channel.clone())
        .completion(authorized(completion(false)))
        .await
        .unwrap()
        .into_inner();
    let mut done = Vec::new();
    for _ in 0..3 {
        let polled = ops.get(authorized(op_pb::GetOperationRequest { operation_id: op.id.clone() })).await.unwrap();
        done.push(polled.into_inner().done);
    }
    assert_eq!(done, [false, false, true]);
    control.clear_faults();

    // A token issued by the emulator expires when a fault says so, on any method.
    let token = IamTokenServiceClient::new(channel.clone())
        .create(iam::CreateIamTokenRequest {
            identity: Some(iam::create_iam_token_request::Identity::YandexPassportOauthToken("y0_x".into())),
        })
        .await
        .unwrap()
        .into_inner()
        .iam_token;
    control.add_fault(FaultRule::new("TokenizerService/Tokenize", FaultAction::ExpireTokens)).unwrap();
    let mut request =
        Request::new(pb::TokenizeRequest { model_uri: "gpt://f/yandexgpt/latest".into(), text: "x".into() });
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    let status = TokenizerServiceClient::new(channel.clone()).tokenize(request).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn the_journal_never_shows_credentials() {
    let (emulator, channel) = start(Emulator::builder()).await;
    let mut client = IamTokenServiceClient::new(channel.clone());
    let mut request = Request::new(iam::CreateIamTokenRequest {
        identity: Some(iam::create_iam_token_request::Identity::YandexPassportOauthToken("y0_journal-secret".into())),
    });
    for (name, value) in [
        ("cookie", "session=cookie-secret"),
        ("proxy-authorization", "Basic proxy-secret"),
        ("x-yc-password", "password-secret"),
        ("x-session-token", "token-secret"),
    ] {
        request.metadata_mut().insert(name, value.parse().unwrap());
    }
    let issued = client.create(request).await.unwrap().into_inner().iam_token;
    let mut revoke = Request::new(iam::RevokeIamTokenRequest { iam_token: issued.clone() });
    revoke.metadata_mut().insert("authorization", "rawkey-secret".parse().unwrap());
    let _ = client.revoke(revoke).await;
    let mut revoke = Request::new(iam::RevokeIamTokenRequest { iam_token: issued.clone() });
    revoke.metadata_mut().insert("authorization", format!("Bearer {issued}").parse().unwrap());
    client.revoke(revoke).await.unwrap();
    // A revoked token is refused from then on, even though the default mode accepts any
    // foreign bearer token.
    let mut reuse =
        Request::new(pb::TokenizeRequest { model_uri: "gpt://f/yandexgpt/latest".into(), text: "x".into() });
    reuse.metadata_mut().insert("authorization", format!("Bearer {issued}").parse().unwrap());
    let status = TokenizerServiceClient::new(channel.clone()).tokenize(reuse).await.unwrap_err();
    assert_eq!((status.code(), status.message()), (Code::Unauthenticated, "The token is invalid"));
    let shown = serde_json::to_string(&emulator.control().journal()).unwrap();
    for secret in [
        "y0_journal-secret",
        "cookie-secret",
        "proxy-secret",
        "password-secret",
        "token-secret",
        "rawkey-secret",
        &issued,
    ] {
        assert!(!shown.contains(secret), "`{secret}` in the journal: {shown}");
    }
    assert!(shown.contains("\"authorization\":\"Bearer ***"), "the scheme stays visible: {shown}");
}

#[tokio::test]
async fn grpc_reflection_lists_the_services() {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let (_emulator, channel) = start(Emulator::builder()).await;
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        responses.message().await.unwrap().unwrap().message_response
    else {
        panic!("no service list");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "yandex.cloud.ai.foundation_models.v1.TextGenerationService",
        "yandex.cloud.ai.foundation_models.v1.TokenizerService",
        "yandex.cloud.operation.OperationService",
        "yandex.cloud.iam.v1.IamTokenService",
        "yandex.cloud.endpoint.ApiEndpointService",
    ] {
        assert!(names.iter().any(|n| n == expected), "{expected} in {names:?}");
    }
}
