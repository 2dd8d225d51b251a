//! Global flags: folder, credentials and where the API lives.

use std::{net::IpAddr, path::PathBuf, time::Duration};

use yandex_cloud_ml_sdk::{Credentials, Sdk, Tls};

/// Connection options shared by every command.
#[derive(Debug, Clone, clap::Args)]
pub struct Connection {
    /// Folder id (model URIs are gpt://FOLDER/MODEL/VERSION).
    #[arg(long, global = true, env = "YC_FOLDER_ID")]
    pub folder_id: Option<String>,
    /// API key.
    #[arg(long, global = true, env = "YC_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// IAM token.
    #[arg(long, global = true, env = "YC_IAM_TOKEN", hide_env_values = true)]
    pub iam_token: Option<String>,
    /// OAuth token (exchanged for IAM tokens).
    #[arg(long, global = true, env = "YC_OAUTH_TOKEN", hide_env_values = true)]
    pub oauth_token: Option<String>,
    /// Service-account authorized key file (JSON).
    #[arg(long, global = true, env = "YC_SERVICE_ACCOUNT_KEY_FILE")]
    pub service_account_key: Option<PathBuf>,
    /// Send every call to HOST:PORT (plaintext for loopback addresses, TLS otherwise).
    #[arg(long, global = true, env = "YCML_ENDPOINT")]
    pub endpoint: Option<String>,
    /// Use the local emulator at HOST:PORT (discovery, plaintext, dev credentials).
    #[arg(long, global = true, env = "YCML_EMULATOR_HOST", conflicts_with = "endpoint")]
    pub emulator: Option<String>,
    /// Allow plaintext to a non-loopback --endpoint (credentials travel unencrypted).
    #[arg(long, global = true)]
    pub insecure: bool,
    /// Overall timeout of each call, in seconds.
    #[arg(long, global = true)]
    pub timeout: Option<f64>,
}

fn is_loopback(address: &str) -> bool {
    let host = address.rsplit_once(':').map_or(address, |(h, _)| h).trim_matches(['[', ']']);
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl Connection {
    /// Builds the SDK from the flags (and the environment through clap's `env`).
    pub fn sdk(&self) -> yandex_cloud_ml_sdk::Result<Sdk> {
        let mut builder = Sdk::builder();
        if let Some(addr) = &self.emulator {
            builder = builder.emulator(addr);
        }
        if let Some(addr) = &self.endpoint {
            builder = builder.endpoint(addr).tls(if self.insecure {
                Tls::PlaintextInsecure
            } else if is_loopback(addr) {
                Tls::PlaintextLoopbackOnly
            } else {
                Tls::Enabled
            });
        }
        if let Some(folder) = &self.folder_id {
            builder = builder.folder_id(folder);
        }
        let credentials = if let Some(k) = &self.api_key {
            Some(Credentials::api_key(k.as_str()))
        } else if let Some(t) = &self.iam_token {
            Some(Credentials::iam_token(t.as_str()))
        } else if let Some(t) = &self.oauth_token {
            Some(Credentials::oauth_token(t.as_str()))
        } else if let Some(path) = &self.service_account_key {
            Some(Credentials::service_account_key_file(path)?)
        } else {
            None
        };
        if let Some(c) = credentials {
            builder = builder.credentials(c);
        }
        builder.build()
    }

    /// The per-call timeout, if given.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout.filter(|t| t.is_finite() && *t > 0.0).map(Duration::from_secs_f64)
    }
}
