//! The CLI's errors: what went wrong, and a hint in the CLI's own terms (flags, environment
//! variables, other `ycml` commands). An SDK error's hint comes from its structured
//! [`Remedy`], never from its message text.

use std::fmt;

use yandex_cloud_ml_sdk::{Error, Remedy};

/// A failed command: printed as `ycml: MESSAGE` and, when there is one, `hint: HINT`.
#[derive(Debug)]
pub struct CliError {
    message: String,
    hint: Option<String>,
}

impl CliError {
    /// An error with a hint.
    pub fn with_hint(message: impl Into<String>, hint: impl Into<String>) -> CliError {
        CliError { message: message.into(), hint: Some(hint.into()) }
    }

    /// The hint, if any.
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<String> for CliError {
    fn from(message: String) -> CliError {
        CliError { message, hint: None }
    }
}

impl From<&str> for CliError {
    fn from(message: &str) -> CliError {
        CliError::from(message.to_owned())
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> CliError {
        CliError::from(e.to_string())
    }
}

impl From<serde_json::Error> for CliError {
    fn from(e: serde_json::Error) -> CliError {
        CliError::from(e.to_string())
    }
}

impl From<Error> for CliError {
    fn from(e: Error) -> CliError {
        let hint = e.remedy().and_then(remedy);
        match hint {
            Some(hint) => CliError { message: e.without_remedy().to_string(), hint: Some(hint) },
            // A remedy the CLI has no words for is said in the SDK's.
            None => CliError { message: e.to_string(), hint: None },
        }
    }
}

/// The SDK's remedy as flags and commands of `ycml`.
fn remedy(remedy: &Remedy) -> Option<String> {
    let said = match remedy {
        Remedy::RaiseTimeout { timeout } => {
            format!("raise --timeout (it was {timeout:?}) if the call needs longer")
        }
        Remedy::SetFolderId => "pass --folder-id FOLDER, set YC_FOLDER_ID, or choose a yc profile that has one".into(),
        Remedy::ProvideCredentials => "pass --api-key, --iam-token, --oauth-token or --service-account-key (or set \
             YC_API_KEY, YC_IAM_TOKEN, YC_OAUTH_TOKEN, YC_SERVICE_ACCOUNT_KEY_FILE, or log in with `yc init`); to \
             work offline, use --emulator HOST:PORT with a running `ycml emulator`"
            .into(),
        Remedy::TrustCertificateAuthority => {
            "if a corporate proxy or a private CA signs it, trust that CA with --ca-cert FILE (or SSL_CERT_FILE)".into()
        }
        Remedy::CheckEndpoint => "if the host name is wrong, check --endpoint or --api-endpoint".into(),
        Remedy::SetServiceEndpoint { .. } => "send every call to one address with --endpoint HOST:PORT".into(),
        Remedy::AllowOverwrite { path } => format!("remove {} or pass --exist-ok", path.display()),
        Remedy::ChooseChunkSize { min, max } => {
            format!("choose --chunk-size between {} and {} (MiB)", min.div_ceil(1 << 20), max >> 20)
        }
        Remedy::WaitForCompletion { id } => {
            format!("wait for {id} to finish (`ycml batch wait`, `tuning wait` or `operation wait` with its id)")
        }
        Remedy::Reattach { id } => {
            format!("it keeps running: wait again with `ycml operation wait {id}` (and a longer --wait-timeout)")
        }
        Remedy::SendLess { limit } => {
            format!("send less: a shorter prompt, or fewer or smaller --tool files (the limit is {limit} bytes)")
        }
        _ => return None,
    };
    Some(said)
}
