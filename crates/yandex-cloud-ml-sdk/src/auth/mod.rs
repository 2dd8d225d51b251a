//! Credentials: where the `authorization` header of every call comes from.
//!
//! | constructor | header | refresh |
//! |---|---|---|
//! | [`Credentials::api_key`] | `Api-Key <key>` | never |
//! | [`Credentials::iam_token`] | `Bearer <token>` | never (you own the token) |
//! | [`Credentials::oauth_token`] | `Bearer <IAM token>` exchanged through `IamTokenService/Create` | before expiry |
//! | [`Credentials::service_account_key`] | `Bearer <IAM token>` bought with a PS256 JWT | before expiry |
//! | [`Credentials::metadata_service`] | `Bearer <token>` from the VM metadata service | before expiry |
//! | [`Credentials::yc_cli`] | `Bearer <token>` from `yc iam create-token` | hourly |
//! | [`Credentials::from_env`] | the first source that applies, see below | as above |
//!
//! Exchanged tokens are cached and refreshed ahead of expiry by one caller while the others keep
//! using the still-valid token. Secrets never appear in `Debug` output, logs or errors.

mod metadata;
mod secret;
mod service_account;
mod token_cache;
mod yc_cli;

use std::{
    fmt,
    io::IsTerminal,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime},
};

use tokio::sync::OnceCell;
use tonic::metadata::AsciiMetadataValue;
use yandex_cloud_ml_proto::yandex::cloud::iam::v1 as iam;

pub use secret::Secret;
pub use service_account::ServiceAccountKey;
use token_cache::{IssuedToken, TokenCache, bearer, header_value};

use crate::{
    call::CallOptions,
    error::{Error, Result},
    transport::{Transport, rpc},
};

/// Timeout of one token fetch from the metadata service or the yc CLI.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// How the SDK authenticates. Build one with the constructors; cheap to clone.
///
/// ```
/// use yandex_cloud_ml_sdk::Credentials;
/// let creds = Credentials::api_key("AQVN...");
/// assert_eq!(format!("{creds:?}"), "Credentials::ApiKey(***)");
/// ```
#[derive(Clone)]
pub struct Credentials {
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    None,
    ApiKey(Secret),
    IamToken(Secret),
    OAuth(Secret),
    ServiceAccount(ServiceAccountKey),
    Metadata { url: String },
    YcCli { program: PathBuf, profile: Option<String> },
    EnvIamToken { var: String },
    Auto,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::None => f.write_str("Credentials::None"),
            Kind::ApiKey(_) => f.write_str("Credentials::ApiKey(***)"),
            Kind::IamToken(_) => f.write_str("Credentials::IamToken(***)"),
            Kind::OAuth(_) => f.write_str("Credentials::OAuthToken(***)"),
            Kind::ServiceAccount(k) => write!(f, "Credentials::ServiceAccountKey({k:?})"),
            Kind::Metadata { url } => write!(f, "Credentials::MetadataService({})", without_userinfo(url)),
            Kind::YcCli { program, profile } => {
                write!(f, "Credentials::YcCli({}, profile={profile:?})", program.display())
            }
            Kind::EnvIamToken { var } => write!(f, "Credentials::EnvIamToken(${var})"),
            Kind::Auto => f.write_str("Credentials::FromEnv"),
        }
    }
}

impl Credentials {
    /// An API key, sent as `authorization: Api-Key <key>`.
    pub fn api_key(key: impl Into<Secret>) -> Credentials {
        Credentials { kind: Kind::ApiKey(key.into()) }
    }

    /// A ready IAM token, sent as `authorization: Bearer <token>`. It is never refreshed; use
    /// another source for long-running programs.
    pub fn iam_token(token: impl Into<Secret>) -> Credentials {
        Credentials { kind: Kind::IamToken(token.into()) }
    }

    /// A Yandex Passport OAuth token, exchanged for IAM tokens through `IamTokenService/Create`.
    pub fn oauth_token(token: impl Into<Secret>) -> Credentials {
        Credentials { kind: Kind::OAuth(token.into()) }
    }

    /// A service-account authorized key; each IAM token is bought with a fresh PS256 JWT.
    pub fn service_account_key(key: ServiceAccountKey) -> Credentials {
        Credentials { kind: Kind::ServiceAccount(key) }
    }

    /// Reads a service-account authorized key file (`yc iam key create --output key.json`).
    pub fn service_account_key_file(path: impl AsRef<Path>) -> Result<Credentials> {
        let path = path.as_ref();
        let json = std::fs::read_to_string(path).map_err(|e| {
            Error::invalid_input(format!("cannot read service account key file {}: {e}", path.display()))
        })?;
        Ok(Credentials::service_account_key(ServiceAccountKey::from_json(&json)?))
    }

    /// Tokens from the metadata service of the Yandex Cloud VM the program runs on.
    pub fn metadata_service() -> Credentials {
        Credentials::metadata_service_at(metadata::token_url(metadata::DEFAULT_METADATA_HOST))
    }

    /// Tokens from a metadata service at a full token URL (`http://host:port/computeMetadata/…`),
    /// e.g. a local test server.
    pub fn metadata_service_at(url: impl Into<String>) -> Credentials {
        Credentials { kind: Kind::Metadata { url: url.into() } }
    }

    /// Tokens from `yc iam create-token` (the `yc` found on `PATH`, default profile).
    pub fn yc_cli() -> Credentials {
        Credentials::yc_cli_at("yc", None)
    }

    /// Tokens from a specific `yc` executable and, optionally, profile.
    pub fn yc_cli_at(program: impl Into<PathBuf>, profile: Option<&str>) -> Credentials {
        Credentials { kind: Kind::YcCli { program: program.into(), profile: profile.map(str::to_owned) } }
    }

    /// An IAM token read from the environment variable `var` on every request, for setups
    /// where another process keeps it fresh.
    pub fn iam_token_from_env_var(var: impl Into<String>) -> Credentials {
        Credentials { kind: Kind::EnvIamToken { var: var.into() } }
    }

    /// Sends no `authorization` header (on-premises installations, the emulator in open mode).
    pub fn none() -> Credentials {
        Credentials { kind: Kind::None }
    }

    /// Classifies a raw string the way the Python SDK does: `t1.…` is an IAM token, `y0_…`
    /// (y0–y3) an OAuth token, anything else an API key.
    pub fn from_string(value: &str) -> Credentials {
        let v = value.trim();
        let bytes = v.as_bytes();
        if bytes.len() > 2 && bytes[0] == b't' && bytes[1].is_ascii_digit() && bytes[2] == b'.' {
            Credentials::iam_token(v)
        } else if bytes.len() > 3 && bytes[0] == b'y' && (b'0'..=b'3').contains(&bytes[1]) && bytes[2] == b'_' {
            Credentials::oauth_token(v)
        } else {
            Credentials::api_key(v)
        }
    }

    /// The automatic chain, resolved on the first call (the Python SDK's order):
    /// 1. `YC_API_KEY` → API key; 2. `YC_IAM_TOKEN` → IAM token; 3. `YC_OAUTH_TOKEN` → OAuth;
    /// 4. `YC_SERVICE_ACCOUNT_KEY_FILE` → service-account key (a Rust-SDK addition);
    /// 5. the VM metadata service (`YC_METADATA_ADDR` overrides its host; probed with a 1 s
    ///    timeout if set, 0.1 s otherwise); 6. `YC_TOKEN`, re-read on every request;
    /// 7. `yc iam create-token` if `yc` is on `PATH` and stdin is a terminal.
    ///
    /// If nothing applies, the first call fails with an [`ErrorKind::Auth`](crate::ErrorKind) error.
    pub fn from_env() -> Credentials {
        Credentials { kind: Kind::Auto }
    }

    pub(crate) fn is_explicit_none(&self) -> bool {
        matches!(self.kind, Kind::None)
    }

    /// Rejects credentials that could never form a valid header, before any call.
    pub(crate) fn check(&self) -> Result<()> {
        match &self.kind {
            Kind::ApiKey(k) => header_value("Api-Key", k).map(drop),
            Kind::IamToken(t) => bearer(t).map(drop),
            Kind::OAuth(t) if t.is_empty() => Err(Error::auth("empty OAuth token")),
            _ => Ok(()),
        }
    }
}

/// A URL with any `user:password@` part replaced, for `Debug` output.
fn without_userinfo(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

fn env_nonempty(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

/// Resolved credential source with whatever it needs at call time.
enum Source {
    None,
    Static(AsciiMetadataValue),
    EnvVar(String),
    Refreshing(Kind),
}

/// Produces the `authorization` header for calls; owned by the transport.
pub(crate) struct Authenticator {
    credentials: Credentials,
    source: OnceCell<Source>,
    cache: TokenCache,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.credentials.fmt(f)
    }
}

impl Authenticator {
    pub(crate) fn new(credentials: Credentials) -> Arc<Authenticator> {
        Arc::new(Authenticator { credentials, source: OnceCell::new(), cache: TokenCache::default() })
    }

    /// The header for the next call, or `None` when no header is to be sent.
    pub(crate) async fn header(&self, transport: &Transport) -> Result<Option<AsciiMetadataValue>> {
        let source = self.source.get_or_try_init(|| self.resolve(transport)).await?;
        match source {
            Source::None => Ok(None),
            Source::Static(h) => Ok(Some(h.clone())),
            Source::EnvVar(var) => {
                let token = env_nonempty(var).ok_or_else(|| {
                    Error::auth(format!("environment variable {var} with the IAM token is no longer set"))
                })?;
                bearer(&Secret::new(token)).map(Some)
            }
            Source::Refreshing(kind) => self.cache.header(|| fetch(kind, transport)).await.map(Some),
        }
    }

    /// Whether the credential is a cached token that [`invalidate`](Self::invalidate) can replace.
    pub(crate) fn refreshes(&self) -> bool {
        matches!(self.source.get(), Some(Source::Refreshing(_)))
    }

    /// Drops a cached token the server rejected. Returns true if a retry can get a new one.
    pub(crate) fn invalidate(&self, rejected: Option<&AsciiMetadataValue>) -> bool {
        match (self.source.get(), rejected) {
            (Some(Source::Refreshing(_)), Some(header)) => {
                self.cache.invalidate(header);
                true
            }
            _ => false,
        }
    }

    async fn resolve(&self, transport: &Transport) -> Result<Source> {
        let kind = match &self.credentials.kind {
            Kind::Auto => self.resolve_chain(transport).await?,
            other => other.clone(),
        };
        Ok(match kind {
            Kind::None => Source::None,
            Kind::ApiKey(k) => Source::Static(header_value("Api-Key", &k)?),
            Kind::IamToken(t) => Source::Static(bearer(&t)?),
            Kind::EnvIamToken { var } => Source::EnvVar(var),
            refreshing => Source::Refreshing(refreshing),
        })
    }

    async fn resolve_chain(&self, transport: &Transport) -> Result<Kind> {
        if let Some(k) = env_nonempty("YC_API_KEY") {
            return Ok(Kind::ApiKey(Secret::new(k)));
        }
        if let Some(t) = env_nonempty("YC_IAM_TOKEN") {
            return Ok(Kind::IamToken(Secret::new(t)));
        }
        if let Some(t) = env_nonempty("YC_OAUTH_TOKEN") {
            return Ok(Kind::OAuth(Secret::new(t)));
        }
        if let Some(path) = env_nonempty("YC_SERVICE_ACCOUNT_KEY_FILE") {
            return Ok(Credentials::service_account_key_file(path)?.kind);
        }
        let (host, probe_timeout) = match env_nonempty("YC_METADATA_ADDR") {
            Some(h) => (h, Duration::from_secs(1)),
            None => (metadata::DEFAULT_METADATA_HOST.to_owned(), Duration::from_millis(100)),
        };
        let url = metadata::token_url(&host);
        if let Ok(issued) = metadata::fetch_token(&url, probe_timeout).await {
            let kind = Kind::Metadata { url };
            // Keep the probed token instead of fetching it again.
            self.cache.header(|| async { Ok(issued) }).await?;
            return Ok(kind);
        }
        if env_nonempty("YC_TOKEN").is_some() {
            return Ok(Kind::EnvIamToken { var: "YC_TOKEN".into() });
        }
        if std::io::stdin().is_terminal()
            && let Some(program) = yc_cli::find_on_path()
        {
            let profile = env_nonempty("YC_PROFILE");
            let kind = Kind::YcCli { program, profile };
            self.cache.header(|| fetch(&kind, transport)).await?;
            return Ok(kind);
        }
        Err(Error::auth("no credentials found").with_remedy(crate::error::Remedy::ProvideCredentials))
    }
}

/// Obtains a new IAM token from a refreshing source. Boxed because the IAM exchange is itself
/// an RPC made through the transport that asked for the token.
fn fetch<'a>(
    kind: &'a Kind,
    transport: &'a Transport,
) -> std::pin::Pin<Box<dyn Future<Output = Result<IssuedToken>> + Send + 'a>> {
    Box::pin(fetch_unboxed(kind, transport))
}

async fn fetch_unboxed(kind: &Kind, transport: &Transport) -> Result<IssuedToken> {
    match kind {
        Kind::OAuth(token) => {
            let identity = iam::create_iam_token_request::Identity::YandexPassportOauthToken(token.expose().to_owned());
            exchange(transport, identity).await
        }
        Kind::ServiceAccount(key) => {
            let identity = iam::create_iam_token_request::Identity::Jwt(key.signed_jwt()?);
            exchange(transport, identity).await
        }
        Kind::Metadata { url } => metadata::fetch_token(url, FETCH_TIMEOUT).await,
        Kind::YcCli { program, profile } => yc_cli::create_token(program, profile.as_deref(), FETCH_TIMEOUT).await,
        _ => Err(Error::auth("credential source does not issue tokens")),
    }
}

/// `IamTokenService/Create`: trades an OAuth token or a JWT for an IAM token.
async fn exchange(transport: &Transport, identity: iam::create_iam_token_request::Identity) -> Result<IssuedToken> {
    let request = iam::CreateIamTokenRequest { identity: Some(identity) };
    let response: iam::CreateIamTokenResponse = transport
        .unary(&rpc::IAM_CREATE_TOKEN, request, &CallOptions::with_timeout(Duration::from_secs(60)))
        .await
        .map_err(|e| Error::auth(format!("IAM token exchange failed: {e}")).with_source(e))?;
    let expires_in = response
        .expires_at
        .and_then(|ts| SystemTime::try_from(ts).ok())
        .and_then(|at| at.duration_since(SystemTime::now()).ok());
    Ok(IssuedToken { token: Secret::new(response.iam_token), expires_in })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_strings_like_the_python_sdk() {
        assert!(matches!(Credentials::from_string("t1.9euelZ...").kind, Kind::IamToken(_)));
        assert!(matches!(Credentials::from_string("y0_AgAAAA").kind, Kind::OAuth(_)));
        assert!(matches!(Credentials::from_string("y4_not_oauth").kind, Kind::ApiKey(_)));
        assert!(matches!(Credentials::from_string("AQVNxyz").kind, Kind::ApiKey(_)));
    }

    #[test]
    fn debug_hides_every_secret() {
        for c in [
            Credentials::api_key("k-secret"),
            Credentials::iam_token("t1.secret"),
            Credentials::oauth_token("y0_secret"),
        ] {
            assert!(!format!("{c:?}").contains("secret"), "{c:?}");
        }
        let m = Credentials::metadata_service_at("http://user:secret@10.0.0.1:80/computeMetadata/v1/token");
        assert_eq!(format!("{m:?}"), "Credentials::MetadataService(http://***@10.0.0.1:80/computeMetadata/v1/token)");
    }

    #[test]
    fn keys_that_cannot_be_a_header_are_rejected_before_any_call() {
        let e = Credentials::api_key("ключ-AQVN").check().unwrap_err();
        assert!(e.to_string().contains("non-ASCII"), "{e}");
        assert!(!e.to_string().contains("ключ"), "{e}");
        assert!(Credentials::api_key("AQVN-ok").check().is_ok());
        assert!(Credentials::iam_token("t1.\nx").check().is_err());
    }
}
