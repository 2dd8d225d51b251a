//! The `yc` CLI's profiles (`~/.config/yandex-cloud/config.yaml`), so that a `yc` user needs no
//! flags: the active profile (or `--profile NAME`) gives the folder, the API endpoint and the
//! credentials when neither flags nor the environment do.

use std::path::PathBuf;

use yaml_rust2::{Yaml, YamlLoader};
use yandex_cloud_ml_sdk::{Credentials, ServiceAccountKey};

use crate::error::CliError;

/// What a profile holds that `ycml` uses. `Debug` is not derived: the profile holds secrets.
pub struct YcProfile {
    pub name: String,
    pub folder_id: Option<String>,
    pub endpoint: Option<String>,
    credentials: Option<ProfileCredentials>,
}

enum ProfileCredentials {
    /// A Yandex account's OAuth token (`yc init` with a Passport account).
    OAuth(String),
    /// A service account's authorized key, stored in the profile as a mapping.
    ServiceAccountKey(String),
    /// A federated account: tokens come from `yc iam create-token`, which can open a browser.
    Federation,
}

/// Where `yc` keeps its configuration.
pub fn config_path() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
    Some(PathBuf::from(home).join(".config/yandex-cloud/config.yaml"))
}

impl YcProfile {
    /// The profile named `name`, or the active one; `None` when `yc` is not configured and no
    /// profile was asked for.
    pub fn load(name: Option<&str>) -> Result<Option<YcProfile>, CliError> {
        let Some(path) = config_path() else {
            return match name {
                Some(n) => {
                    Err(format!("--profile {n}: HOME is not set, so the yc configuration cannot be found").into())
                }
                None => Ok(None),
            };
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && name.is_none() => return Ok(None),
            Err(e) => return Err(format!("cannot read the yc configuration {}: {e}", path.display()).into()),
        };
        let unreadable = |why: String| CliError::from(format!("the yc configuration {} {why}", path.display()));
        let docs = YamlLoader::load_from_str(&text).map_err(|e| unreadable(format!("is not YAML: {e}")))?;
        let Some(config) = docs.first() else { return Ok(None) };
        let chosen = match name {
            Some(n) => n.to_owned(),
            None => match config["current"].as_str() {
                Some(current) => current.to_owned(),
                None => return Ok(None),
            },
        };
        let profile = &config["profiles"][chosen.as_str()];
        if profile.is_badvalue() {
            let known: Vec<&str> =
                config["profiles"].as_hash().map(|h| h.keys().filter_map(Yaml::as_str).collect()).unwrap_or_default();
            return Err(unreadable(format!(
                "has no profile `{chosen}`; its profiles: {}",
                if known.is_empty() { "none".to_owned() } else { known.join(", ") }
            )));
        }
        let text_of = |key: &str| profile[key].as_str().filter(|s| !s.is_empty()).map(str::to_owned);
        let credentials = if let Some(token) = text_of("token") {
            Some(ProfileCredentials::OAuth(token))
        } else if let Yaml::Hash(key) = &profile["service-account-key"] {
            let json: serde_json::Map<String, serde_json::Value> = key
                .iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), serde_json::Value::String(v.as_str()?.to_owned()))))
                .collect();
            Some(ProfileCredentials::ServiceAccountKey(serde_json::Value::Object(json).to_string()))
        } else if text_of("federation-id").is_some() {
            Some(ProfileCredentials::Federation)
        } else {
            None
        };
        Ok(Some(YcProfile {
            folder_id: text_of("folder-id"),
            endpoint: text_of("endpoint"),
            credentials,
            name: chosen,
        }))
    }

    /// The profile's credentials; for a profile without any, tokens from `yc iam create-token`
    /// with that profile.
    pub fn credentials(&self) -> Result<Option<Credentials>, CliError> {
        Ok(match &self.credentials {
            // Only yc knows what else the profile may use (an instance service account…).
            None => Some(Credentials::yc_cli_at("yc", Some(&self.name))),
            Some(ProfileCredentials::OAuth(token)) => Some(Credentials::oauth_token(token.as_str())),
            Some(ProfileCredentials::ServiceAccountKey(json)) => {
                let key = ServiceAccountKey::from_json(json).map_err(|e| {
                    CliError::from(format!("the service-account key of yc profile `{}`: {e}", self.name))
                })?;
                Some(Credentials::service_account_key(key))
            }
            Some(ProfileCredentials::Federation) => Some(Credentials::yc_cli_at("yc", Some(&self.name))),
        })
    }

    /// What kind of credentials the profile has, for `--help` and `-v`.
    pub fn credentials_kind(&self) -> &'static str {
        match &self.credentials {
            Some(ProfileCredentials::OAuth(_)) => "OAuth token",
            Some(ProfileCredentials::ServiceAccountKey(_)) => "service-account key",
            Some(ProfileCredentials::Federation) => "federated account, through `yc iam create-token`",
            None => "through `yc iam create-token`",
        }
    }
}
