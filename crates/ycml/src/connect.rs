//! Global flags: folder, credentials and where the API lives, with the `yc` profile filling in
//! what flags and the environment leave out.

use std::{net::IpAddr, path::PathBuf, time::Duration};

use yandex_cloud_ml_sdk::{Credentials, Sdk, Tls};

use crate::{error::CliError, profile::YcProfile};

/// Connection options shared by every command. `Debug` shows which credentials were given,
/// never their values.
#[derive(Clone, clap::Args)]
#[command(next_help_heading = "Connection and credentials")]
pub struct Connection {
    /// Folder id (model URIs are gpt://FOLDER/MODEL/VERSION).
    #[arg(long, global = true, hide = true, env = "YC_FOLDER_ID")]
    pub folder_id: Option<String>,
    /// API key.
    #[arg(long, global = true, hide = true, env = "YC_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// IAM token.
    #[arg(long, global = true, hide = true, env = "YC_IAM_TOKEN", hide_env_values = true)]
    pub iam_token: Option<String>,
    /// OAuth token (exchanged for IAM tokens).
    #[arg(long, global = true, hide = true, env = "YC_OAUTH_TOKEN", hide_env_values = true)]
    pub oauth_token: Option<String>,
    /// Service-account authorized key file (JSON).
    #[arg(long, global = true, hide = true, env = "YC_SERVICE_ACCOUNT_KEY_FILE")]
    pub service_account_key: Option<PathBuf>,
    /// Endpoint discovery at HOST:PORT (default api.cloud.yandex.net:443).
    #[arg(long, global = true, hide = true, env = "YC_API_ENDPOINT")]
    pub api_endpoint: Option<String>,
    /// Send every call to HOST:PORT, without discovery (plaintext for loopback, TLS otherwise).
    #[arg(long, global = true, hide = true, env = "YCML_ENDPOINT", conflicts_with = "api_endpoint")]
    pub endpoint: Option<String>,
    /// Use the local emulator at HOST:PORT (discovery, plaintext, dev credentials).
    #[arg(long, global = true, hide = true, env = "YCML_EMULATOR_HOST", conflicts_with_all = ["endpoint", "api_endpoint"])]
    pub emulator: Option<String>,
    /// Also trust the CA certificate(s) in this PEM file, e.g. of a TLS-inspecting proxy
    /// (SSL_CERT_FILE is honoured too).
    #[arg(long, global = true, hide = true, value_name = "FILE", env = "SSL_CERT_FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Use TLS even to a loopback address (e.g. `ycml emulator --tls-self-signed`).
    #[arg(long, global = true, hide = true, conflicts_with = "insecure")]
    pub tls: bool,
    /// Allow plaintext to a non-loopback --endpoint (credentials travel unencrypted).
    #[arg(long, global = true, hide = true)]
    pub insecure: bool,
    /// The yc CLI profile that supplies the folder, endpoint and credentials flags and the
    /// environment leave out (default: yc's active profile).
    #[arg(long, global = true, hide = true, env = "YCML_PROFILE", value_name = "NAME")]
    pub profile: Option<String>,
    /// Overall timeout of each call, retries included (seconds, or 500ms, 30s, 2m, 1h; default: each
    /// call's own, 180 s for a completion).
    #[arg(long, global = true, hide = true, value_name = "DURATION", value_parser = crate::seconds::parse)]
    pub timeout: Option<Duration>,
    /// Log request and response payloads (`-vv`).
    #[arg(skip)]
    pub log_payloads: bool,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let given = |s: &Option<String>| if s.is_some() { "***" } else { "-" };
        f.debug_struct("Connection")
            .field("folder_id", &self.folder_id)
            .field("api_key", &given(&self.api_key))
            .field("iam_token", &given(&self.iam_token))
            .field("oauth_token", &given(&self.oauth_token))
            .field("service_account_key", &self.service_account_key)
            .field("api_endpoint", &self.api_endpoint)
            .field("endpoint", &self.endpoint)
            .field("emulator", &self.emulator)
            .field("ca_cert", &self.ca_cert)
            .field("tls", &self.tls)
            .field("insecure", &self.insecure)
            .field("profile", &self.profile)
            .field("timeout", &self.timeout)
            .finish()
    }
}

fn is_loopback(address: &str) -> bool {
    let host = address.rsplit_once(':').map_or(address, |(h, _)| h).trim_matches(['[', ']']);
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl Connection {
    fn tls_for(&self, address: &str) -> Tls {
        if self.insecure {
            Tls::PlaintextInsecure
        } else if is_loopback(address) && !self.tls {
            Tls::PlaintextLoopbackOnly
        } else {
            Tls::Enabled
        }
    }

    /// True when a credential came from a flag or the environment.
    fn has_credentials(&self) -> bool {
        self.api_key.is_some()
            || self.iam_token.is_some()
            || self.oauth_token.is_some()
            || self.service_account_key.is_some()
            || std::env::var_os("YC_TOKEN").is_some_and(|t| !t.is_empty())
    }

    /// The `yc` profile to fall back on: `--profile` (whose problems are errors), else the
    /// active one when flags and the environment leave something out (whose problems are
    /// warnings: a broken yc configuration must not stop a command that does not need it).
    fn profile(&self) -> Result<Option<YcProfile>, CliError> {
        if self.profile.is_some() {
            return YcProfile::load(self.profile.as_deref());
        }
        let needed = self.emulator.is_none() && (self.folder_id.is_none() || !self.has_credentials());
        if !needed {
            return Ok(None);
        }
        YcProfile::load(None).or_else(|e| {
            eprintln!("ycml: the yc CLI's profile is not used: {e}");
            Ok(None)
        })
    }

    /// Builds the SDK from the flags, the environment (through clap's `env`) and, for what they
    /// leave out, the `yc` profile.
    pub async fn sdk(&self) -> Result<Sdk, CliError> {
        let profile = self.profile()?;
        let mut builder = Sdk::builder().log_payloads(self.log_payloads);
        if let Some(addr) = &self.emulator {
            listening(addr, "--emulator or YCML_EMULATOR_HOST").await?;
            builder = builder.emulator(addr);
            if self.tls {
                builder = builder.tls(Tls::Enabled);
            }
        }
        let api_endpoint = self.api_endpoint.as_ref().or(profile.as_ref().and_then(|p| p.endpoint.as_ref()));
        if let (Some(addr), None, None) = (api_endpoint, &self.emulator, &self.endpoint) {
            builder = builder.discovery_endpoint(addr).tls(self.tls_for(addr));
        }
        if let Some(addr) = &self.endpoint {
            listening(addr, "--endpoint or YCML_ENDPOINT").await?;
            builder = builder.endpoint(addr).tls(self.tls_for(addr));
        }
        if let Some(path) = &self.ca_cert {
            let pem = std::fs::read(path).map_err(|e| format!("--ca-cert {}: {e}", path.display()))?;
            builder = builder.ca_certificate_pem(pem);
        }
        let folder = match (&self.folder_id, &profile) {
            (Some(folder), _) => Some(folder),
            (None, Some(p)) => {
                let folder = p.folder_id.as_ref();
                tracing::debug!(profile = p.name, folder, "the folder comes from the yc profile");
                folder
            }
            (None, None) => None,
        };
        match folder {
            Some(folder) => builder = builder.folder_id(folder),
            None if self.emulator.is_none() => {
                return Err(CliError::with_hint(
                    "no folder",
                    "pass --folder-id FOLDER, set YC_FOLDER_ID, or choose a yc profile with a folder-id; to work \
                     offline, use --emulator HOST:PORT with a running `ycml emulator`",
                ));
            }
            None => {}
        }
        let credentials = if let Some(k) = &self.api_key {
            Some(Credentials::api_key(k.as_str()))
        } else if let Some(t) = &self.iam_token {
            Some(Credentials::iam_token(t.as_str()))
        } else if let Some(t) = &self.oauth_token {
            Some(Credentials::oauth_token(t.as_str()))
        } else if let Some(path) = &self.service_account_key {
            let key = Credentials::service_account_key_file(path)
                .map_err(|e| format!("--service-account-key {}: {}", path.display(), e.message()))?;
            Some(key)
        } else if self.has_credentials() {
            // YC_TOKEN: the SDK's chain reads it on every request.
            None
        } else if let Some(p) = &profile {
            tracing::debug!(profile = p.name, kind = p.credentials_kind(), "the credentials come from the yc profile");
            p.credentials()?
        } else {
            None
        };
        if let Some(c) = credentials {
            builder = builder.credentials(c);
        }
        Ok(builder.build()?)
    }

    /// The per-call timeout, if given.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout.filter(|t| !t.is_zero())
    }

    /// Where the folder and the credentials come from, for `ycml --help` (and `-v`).
    pub fn sources() -> String {
        let env = |var: &str| std::env::var_os(var).is_some_and(|v| !v.is_empty());
        if let Some(emulator) = std::env::var("YCML_EMULATOR_HOST").ok().filter(|v| !v.is_empty()) {
            return format!(
                "Calls go to the emulator at {emulator} (YCML_EMULATOR_HOST), which needs no folder or credentials."
            );
        }
        let profile = match YcProfile::load(std::env::var("YCML_PROFILE").ok().as_deref()) {
            Ok(p) => p,
            Err(e) => return format!("Folder and credentials: {e}"),
        };
        let folder = if env("YC_FOLDER_ID") {
            "YC_FOLDER_ID".to_owned()
        } else if let Some(p) = profile.as_ref().filter(|p| p.folder_id.is_some()) {
            format!("yc profile `{}` ({})", p.name, p.folder_id.as_deref().unwrap_or_default())
        } else {
            "none: pass --folder-id".to_owned()
        };
        let credentials = ["YC_API_KEY", "YC_IAM_TOKEN", "YC_OAUTH_TOKEN", "YC_SERVICE_ACCOUNT_KEY_FILE", "YC_TOKEN"]
            .into_iter()
            .find(|v| env(v))
            .map(str::to_owned)
            .or_else(|| {
                let p = profile.as_ref()?;
                Some(format!("yc profile `{}` ({})", p.name, p.credentials_kind()))
            })
            .unwrap_or_else(|| "the SDK's chain (VM metadata service, YC_TOKEN, `yc iam create-token`)".to_owned());
        format!(
            "Unless flags say otherwise, the folder comes from {folder}, the credentials from {credentials}.\n\
             Flags win over the environment, which wins over the yc CLI's profile (--profile, else `current` in \
             ~/.config/yandex-cloud/config.yaml)."
        )
    }
}

/// Fails fast, naming the address, when nothing listens on a loopback address: a local
/// emulator that is not running is a mistake to report at once, not a transient failure to
/// retry for seconds.
async fn listening(address: &str, flag: &str) -> Result<(), CliError> {
    if !is_loopback(address) {
        return Ok(());
    }
    let connect = tokio::net::TcpStream::connect(address);
    match tokio::time::timeout(Duration::from_secs(2), connect).await {
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Err(CliError::with_hint(
            format!("nothing is listening on {address} ({flag})"),
            format!("is the emulator running? Start one with `ycml emulator --listen {address}`"),
        )),
        Ok(Err(e)) => Err(format!("cannot connect to {address} ({flag}): {e}").into()),
        // Connected, or slow to answer: the call itself will tell.
        _ => Ok(()),
    }
}
