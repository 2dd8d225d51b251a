//! `run_stream`: print the answer as it is generated.

use futures_util::StreamExt;
use yandex_cloud_ml_sdk::{Sdk, completions::Message};

#[path = "connect/mod.rs"]
mod connect;

#[tokio::main]
pub async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (sdk, _emulator) = connect::sdk().await?;
    run(&sdk, &mut std::io::stdout()).await
}

/// The example, writing what it shows to `out` (stdout when run; a buffer in the tests).
pub async fn run(sdk: &Sdk, out: &mut dyn std::io::Write) -> Result<(), Box<dyn std::error::Error>> {
    let model = sdk.models().completions("yandexgpt");

    let messages = [Message::system("You are a zoologist."), Message::user("Tell me about platypuses, briefly.")];
    let mut stream = model.run_stream(messages).await?;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        // `delta()` is the new text; `text()` would be everything so far.
        write!(out, "{}", chunk.delta())?;
        if chunk.is_final() {
            writeln!(out, "\n[{:?}, {} tokens]", chunk.status(), chunk.usage().total_tokens)?;
        }
    }
    Ok(())
}
