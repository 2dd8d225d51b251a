//! A multi-turn conversation: each answer goes back into the history (`Message::from(&result)`),
//! so the model sees everything said so far. The history is plain data: store it as JSON and
//! continue later.

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
    let model = sdk.models().completions("yandexgpt").configure(|c| c.temperature(0.3))?;
    let mut history = vec![Message::system("You are a concise travel guide.")];
    for question in ["Name one sight in Kazan.", "How old is it?", "Thanks! Summarize our chat."] {
        history.push(Message::user(question));
        let answer = model.run(history.clone()).await?;
        writeln!(out, "> {question}\n{}", answer.text())?;
        history.push(Message::from(&answer));
    }
    // Saved and restored as JSON, the conversation goes on where it stopped.
    let saved = serde_json::to_string(&history)?;
    let restored: Vec<Message> = serde_json::from_str(&saved)?;
    writeln!(out, "history: {} messages, {} bytes of JSON", restored.len(), saved.len())?;
    Ok(())
}
