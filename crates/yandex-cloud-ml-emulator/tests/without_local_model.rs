//! An emulator built without the `local-model` feature says so when asked for a model. CI runs
//! this file on its own (`--no-default-features`): the workspace's tests build every feature.
#![cfg(not(feature = "local-model"))]

#[tokio::test]
async fn a_model_needs_the_local_model_feature() {
    let e = yandex_cloud_ml_emulator::Emulator::builder().model("model.gguf").start("127.0.0.1:0").await.unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    assert_eq!(
        e.to_string(),
        "cannot load model.gguf: this emulator was built without the `local-model` feature \
         (cargo build -p yandex-cloud-ml-emulator --features local-model)"
    );
}
