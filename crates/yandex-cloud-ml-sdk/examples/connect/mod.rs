//! How the examples connect: to Yandex Cloud when the environment names a folder
//! (`YC_FOLDER_ID`, with credentials such as `YC_API_KEY`; see `Sdk::from_env`) or an emulator
//! (`YCML_EMULATOR_HOST`), and otherwise to an emulator started in this process, so they run
//! offline with nothing set up.

use yandex_cloud_ml_emulator::{Emulator, EmulatorHandle};
use yandex_cloud_ml_sdk::Sdk;

/// The SDK, and the emulator started for it when the environment names none (keep it alive
/// while the SDK is used).
pub async fn sdk() -> Result<(Sdk, Option<EmulatorHandle>), Box<dyn std::error::Error>> {
    if std::env::var_os("YC_FOLDER_ID").is_some() || std::env::var_os("YCML_EMULATOR_HOST").is_some() {
        return Ok((Sdk::from_env()?, None));
    }
    let emulator = Emulator::builder().start("127.0.0.1:0").await?;
    Ok((Sdk::builder().emulator(emulator.endpoint()).build()?, Some(emulator)))
}
