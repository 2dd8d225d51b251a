//! Global flags: folder, credentials and where the API lives; and SDK errors said in the CLI's
//! own terms (flags and environment variables instead of builder methods).

use std::{net::IpAddr, path::PathBuf, time::Duration};

use yandex_cloud_ml_sdk::{Credentials, Error, Remedy, Sdk, Tls};

/// Connection options shared by every command. `Debug` shows which credentials were given,
/// never their values.
#[derive(Clone, clap::Args)]
#[command(next_help_heading = "Connection and credentials")]
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
    /// Endpoint discovery at HOST:PORT (default api.cloud.yandex.net:443).
    #[arg(long, global = true, env = "YC_API_ENDPOINT")]
    pub api_endpoint: Option<String>,
    /// Send every call to HOST:PORT, without discovery (plaintext for loopback, TLS otherwise).
    #[arg(long, global = true, env = "YCML_ENDPOINT", conflicts_with = "api_endpoint")]
    pub endpoint: Option<String>,
    /// Use the local emulator at HOST:PORT (discovery, plaintext, dev credentials).
    #[arg(long, global = true, env = "YCML_EMULATOR_HOST", conflicts_with_all = ["endpoint", "api_endpoint"])]
    pub emulator: Option<String>,
    /// Also trust the CA certificate(s) in this PEM file, e.g. of a TLS-inspecting proxy
    /// (SSL_CERT_FILE is honoured too).
    #[arg(long, global = true, value_name = "FILE", env = "SSL_CERT_FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Use TLS even to a loopback address (e.g. `ycml emulator --tls-self-signed`).
    #[arg(long, global = true, conflicts_with = "insecure")]
    pub tls: bool,
    /// Allow plaintext to a non-loopback --endpoint (credentials travel unencrypted).
    #[arg(long, global = true)]
    pub insecure: bool,
    /// Overall timeout of each call, retries included (seconds, or 500ms, 30s, 2m, 1h; default: each
    /// call's own, 180 s for a completion).
    #[arg(long, global = true, value_name = "DURATION", value_parser = crate::seconds::parse)]
    pub timeout: Option<Duration>,
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

    /// Builds the SDK from the flags (and the environment through clap's `env`).
    pub fn sdk(&self) -> Result<Sdk, String> {
        let mut builder = Sdk::builder();
        if let Some(addr) = &self.emulator {
            builder = builder.emulator(addr);
            if self.tls {
                builder = builder.tls(Tls::Enabled);
            }
        }
        if let Some(addr) = &self.api_endpoint {
            builder = builder.discovery_endpoint(addr).tls(self.tls_for(addr));
        }
        if let Some(addr) = &self.endpoint {
            builder = builder.endpoint(addr).tls(self.tls_for(addr));
        }
        if let Some(path) = &self.ca_cert {
            let pem = std::fs::read(path).map_err(|e| format!("--ca-cert {}: {e}", path.display()))?;
            builder = builder.ca_certificate_pem(pem);
        }
        match &self.folder_id {
            Some(folder) => builder = builder.folder_id(folder),
            None if self.emulator.is_none() => {
                return Err("no folder: pass --folder-id FOLDER or set YC_FOLDER_ID \
                            (to work offline, use --emulator HOST:PORT with a running `ycml emulator`)"
                    .into());
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
            Some(Credentials::service_account_key_file(path).map_err(explain)?)
        } else {
            None
        };
        if let Some(c) = credentials {
            builder = builder.credentials(c);
        }
        builder.build().map_err(explain)
    }

    /// The per-call timeout, if given.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout.filter(|t| !t.is_zero())
    }
}

/// An SDK error in the CLI's terms: the SDK's structured remedy said with flags and
/// environment variables instead of builder methods.
pub fn explain(e: Error) -> String {
    let text = e.to_string();
    let Some(remedy) = e.remedy() else { return text };
    let said = match remedy {
        Remedy::RaiseTimeout { .. } => "raise it with --timeout SECONDS if the call needs longer".to_owned(),
        Remedy::SetFolderId => "pass --folder-id FOLDER or set YC_FOLDER_ID".to_owned(),
        Remedy::ProvideCredentials => "pass --api-key, --iam-token, --oauth-token or --service-account-key (or set \
             YC_API_KEY, YC_IAM_TOKEN, YC_OAUTH_TOKEN, YC_SERVICE_ACCOUNT_KEY_FILE); to work offline, use \
             --emulator HOST:PORT with a running `ycml emulator`"
            .to_owned(),
        Remedy::TrustCertificateAuthority => {
            "if a corporate proxy or a private CA signs it, trust that CA with --ca-cert FILE (or SSL_CERT_FILE)"
                .to_owned()
        }
        Remedy::CheckEndpoint => "if the host name is wrong, check --endpoint or --api-endpoint".to_owned(),
        Remedy::SetServiceEndpoint { .. } => "send every call to one address with --endpoint HOST:PORT".to_owned(),
        Remedy::AllowOverwrite { .. } => "remove it or pass --exist-ok".to_owned(),
        Remedy::ChooseChunkSize { min, max } => {
            format!("choose --chunk-size between {} and {} (MiB)", min.div_ceil(1 << 20), max >> 20)
        }
        Remedy::WaitForCompletion { id } => format!("wait for {id} to finish, then ask again"),
        Remedy::Reattach { id } => format!("it keeps running; come back to it with its id {id}"),
        _ => return text,
    };
    text.replace(&format!("; {remedy}"), &format!("; {said}"))
}
