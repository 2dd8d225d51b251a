//! The SDK entry point: [`Sdk`] and its [`SdkBuilder`].

use std::{collections::HashMap, fmt, sync::Arc, time::Duration};

use crate::{
    auth::{Authenticator, Credentials},
    error::{Error, Result},
    retry::RetryPolicy,
    transport::{EndpointConfig, Transport, TransportConfig, endpoints},
};

pub use crate::transport::endpoints::Tls;

/// Environment variable with the folder id.
pub const ENV_FOLDER_ID: &str = "YC_FOLDER_ID";
/// Environment variable overriding the discovery endpoint (`host:port`).
pub const ENV_API_ENDPOINT: &str = "YC_API_ENDPOINT";
/// Environment variable pointing every service at a local emulator (`host:port`, plaintext).
pub const ENV_EMULATOR_HOST: &str = "YCML_EMULATOR_HOST";
/// Folder id used with the emulator when none is configured.
pub const EMULATOR_FOLDER_ID: &str = "b1gemulatorfolder000";
/// API key sent to the emulator when no credentials are configured.
pub const EMULATOR_API_KEY: &str = "emulator-dev-key";

/// Client of Yandex Cloud AI Studio / Foundation Models. Cheap to clone (`Arc` inside),
/// `Send + Sync`; every clone shares the same connections, discovery cache and token cache.
///
/// Each domain adds its entry point: [`models`](Sdk::models) (then
/// [`completions`](Models::completions)), [`datasets`](Sdk::datasets),
/// [`tuning`](Sdk::tuning), [`batch`](Sdk::batch), [`operations`](Sdk::operations).
///
/// ```no_run
/// # async fn demo() -> yandex_cloud_ml_sdk::Result<()> {
/// let sdk = yandex_cloud_ml_sdk::Sdk::from_env()?;
/// let result = sdk.models().completions("yandexgpt").run("hello").await?;
/// println!("{}", result.text());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Sdk {
    inner: Arc<SdkInner>,
}

struct SdkInner {
    folder_id: String,
    transport: Transport,
}

impl fmt::Debug for Sdk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sdk").field("folder_id", &self.inner.folder_id).finish_non_exhaustive()
    }
}

impl Sdk {
    /// Starts configuring an SDK.
    pub fn builder() -> SdkBuilder {
        SdkBuilder::default()
    }

    /// An SDK configured from the environment: `YC_FOLDER_ID`, the credential chain of
    /// [`Credentials::from_env`], `YC_API_ENDPOINT`, and `YCML_EMULATOR_HOST`.
    pub fn from_env() -> Result<Sdk> {
        Sdk::builder().from_env().build()
    }

    /// The folder that model URIs and resources belong to.
    pub fn folder_id(&self) -> &str {
        &self.inner.folder_id
    }

    /// Models by kind and name (`sdk.models().completions("yandexgpt")`).
    pub fn models(&self) -> Models {
        Models { sdk: self.clone() }
    }

    pub(crate) fn transport(&self) -> &Transport {
        &self.inner.transport
    }
}

/// Models of an [`Sdk`] by kind and name; each model domain adds its factory (e.g.
/// [`completions`](Models::completions)).
#[derive(Debug, Clone)]
pub struct Models {
    pub(crate) sdk: Sdk,
}

/// Configures an [`Sdk`]. Nothing touches the network until the first call.
#[derive(Default, Clone)]
pub struct SdkBuilder {
    folder_id: Option<String>,
    credentials: Option<Credentials>,
    discovery: Option<Option<String>>,
    overrides: HashMap<String, String>,
    all_services: Option<String>,
    emulator: bool,
    tls: Option<Tls>,
    ca_pem: Option<Vec<u8>>,
    connect_timeout: Option<Duration>,
    retry: Option<RetryPolicy>,
    data_logging: Option<bool>,
    user_agent_suffix: Option<String>,
    log_payloads: bool,
    chat_base_url: Option<String>,
}

impl fmt::Debug for SdkBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SdkBuilder")
            .field("folder_id", &self.folder_id)
            .field("credentials", &self.credentials)
            .field("discovery", &self.discovery)
            .field("overrides", &self.overrides)
            .field("all_services", &self.all_services)
            .field("tls", &self.tls)
            .field("retry", &self.retry)
            .field("chat_base_url", &self.chat_base_url)
            .finish_non_exhaustive()
    }
}

impl SdkBuilder {
    /// Applies the environment: `YC_FOLDER_ID`, `YC_API_ENDPOINT`, `YCML_EMULATOR_HOST`.
    /// Credentials default to [`Credentials::from_env`] when none are set explicitly. Calls
    /// made after this one override what it read.
    pub fn from_env(mut self) -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        if let Some(folder) = var(ENV_FOLDER_ID) {
            self.folder_id = Some(folder);
        }
        if let Some(endpoint) = var(ENV_API_ENDPOINT) {
            self.discovery = Some(Some(endpoint));
        }
        if let Some(host) = var(ENV_EMULATOR_HOST) {
            self = self.emulator(host);
        }
        self
    }

    /// The folder that model URIs and resources belong to (required, except with the emulator).
    pub fn folder_id(mut self, folder_id: impl Into<String>) -> Self {
        self.folder_id = Some(folder_id.into());
        self
    }

    /// How to authenticate. Defaults to [`Credentials::from_env`] (or to a development key when
    /// talking to the emulator).
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// Shortcut for `credentials(Credentials::api_key(key))`.
    pub fn api_key(self, key: impl Into<crate::Secret>) -> Self {
        self.credentials(Credentials::api_key(key))
    }

    /// The discovery endpoint (`host:port`) queried for the address of every service.
    /// Default `api.cloud.yandex.net:443`.
    pub fn discovery_endpoint(mut self, address: impl Into<String>) -> Self {
        self.discovery = Some(Some(address.into()));
        self
    }

    /// Turns endpoint discovery off; then every service needs [`service_endpoint`](Self::service_endpoint).
    pub fn disable_discovery(mut self) -> Self {
        self.discovery = Some(None);
        self
    }

    /// Overrides the address of one service id (`ai-foundation-models`, `operation`, `iam`,
    /// `endpoint`), bypassing discovery for it.
    pub fn service_endpoint(mut self, service_id: impl Into<String>, address: impl Into<String>) -> Self {
        self.overrides.insert(service_id.into(), address.into());
        self
    }

    /// Sends every call to one address (a proxy, a private installation), without discovery.
    pub fn endpoint(mut self, address: impl Into<String>) -> Self {
        self.all_services = Some(address.into());
        self
    }

    /// Points the SDK at a local emulator in one step: endpoint discovery at `address` (the
    /// emulator answers that every service lives there), plaintext (loopback only), and —
    /// unless set explicitly — the emulator's development API key and folder id.
    pub fn emulator(mut self, address: impl Into<String>) -> Self {
        self.discovery = Some(Some(address.into()));
        self.all_services = None;
        self.emulator = true;
        self
    }

    /// Transport security; default [`Tls::Enabled`] ([`Tls::PlaintextLoopbackOnly`] with
    /// [`emulator`](Self::emulator)).
    pub fn tls(mut self, tls: Tls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Trusts an extra CA certificate (PEM) besides the built-in roots.
    pub fn ca_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pem = Some(pem.into());
        self
    }

    /// Bound for establishing a connection (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Retry policy of every call (default [`RetryPolicy::default`]).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// Sends `x-data-logging-enabled: true|false` with every call, telling the cloud whether it
    /// may log request data. Not sent unless set.
    pub fn data_logging(mut self, enabled: bool) -> Self {
        self.data_logging = Some(enabled);
        self
    }

    /// Appended to the user agent (`yandex-cloud-ml-sdk-rust/<version> <suffix>`).
    pub fn user_agent_suffix(mut self, suffix: impl Into<String>) -> Self {
        self.user_agent_suffix = Some(suffix.into());
        self
    }

    /// The base URL of the OpenAI-compatible API used by [`Sdk::chat`](crate::Sdk::chat).
    /// By default it follows the endpoint like the Python SDK's: `https://llm.api.cloud.yandex.net/v1`
    /// for the public cloud, `http://<address>/v1` for [`emulator`](Self::emulator); other
    /// endpoints need it set. The docs also name `https://ai.api.cloud.yandex.net/v1`.
    pub fn chat_base_url(mut self, url: impl Into<String>) -> Self {
        self.chat_base_url = Some(url.into());
        self
    }

    /// Logs request and response payloads (prompts and answers) at DEBUG level. Off by default.
    pub fn log_payloads(mut self, enabled: bool) -> Self {
        self.log_payloads = enabled;
        self
    }

    /// Validates the configuration and builds the SDK. No network activity happens here.
    pub fn build(self) -> Result<Sdk> {
        let folder_id = match (self.folder_id, self.emulator) {
            (Some(f), _) if !f.trim().is_empty() => f.trim().to_owned(),
            (_, true) => EMULATOR_FOLDER_ID.to_owned(),
            _ => {
                return Err(Error::configuration("folder id is not set").with_remedy(crate::error::Remedy::SetFolderId));
            }
        };
        let credentials = match (self.credentials, self.emulator) {
            (Some(c), _) => c,
            (None, true) => Credentials::api_key(EMULATOR_API_KEY),
            (None, false) => Credentials::from_env(),
        };
        let tls = self.tls.unwrap_or(if self.emulator { Tls::PlaintextLoopbackOnly } else { Tls::Enabled });
        let mut user_agent = format!("yandex-cloud-ml-sdk-rust/{}", env!("CARGO_PKG_VERSION"));
        if let Some(suffix) = self.user_agent_suffix {
            user_agent.push(' ');
            user_agent.push_str(&suffix);
        }
        let discovery = match self.discovery {
            Some(d) => d,
            None => Some(endpoints::DEFAULT_DISCOVERY_ENDPOINT.to_owned()),
        };
        let api_base = crate::transport::openai::base_url(
            self.chat_base_url.as_deref(),
            discovery.as_deref().filter(|_| self.emulator),
            self.all_services.as_deref().or(discovery.as_deref()),
            tls,
        )?;
        let config = TransportConfig {
            endpoints: EndpointConfig {
                discovery,
                overrides: self.overrides,
                all_services: self.all_services,
                tls,
                ca_pem: self.ca_pem,
                connect_timeout: self.connect_timeout.unwrap_or(Duration::from_secs(10)),
                user_agent,
            },
            retry: self.retry.unwrap_or_default(),
            data_logging: self.data_logging,
            log_payloads: self.log_payloads,
            api_base,
        };
        credentials.check()?;
        if credentials.is_explicit_none() {
            tracing::debug!("no authorization header will be sent");
        }
        let transport = Transport::new(config, Authenticator::new(credentials))?;
        Ok(Sdk { inner: Arc::new(SdkInner { folder_id, transport }) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_is_required_outside_the_emulator() {
        let e = Sdk::builder().api_key("k").build().unwrap_err();
        assert!(e.to_string().contains("YC_FOLDER_ID"), "{e}");
        let sdk = Sdk::builder().emulator("127.0.0.1:1").build().unwrap();
        assert_eq!(sdk.folder_id(), EMULATOR_FOLDER_ID);
    }

    #[test]
    fn plaintext_to_remote_hosts_is_refused() {
        let e = Sdk::builder().folder_id("f").emulator("10.1.2.3:50051").build().unwrap_err();
        assert!(e.to_string().contains("loopback"), "{e}");
        let e = Sdk::builder().folder_id("f").endpoint("https://x:1").build().unwrap_err();
        assert!(e.to_string().contains("host:port"), "{e}");
    }
}
