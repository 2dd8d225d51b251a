//! The SDK's single error type.
//!
//! Every fallible SDK call returns [`Error`]. It keeps the evidence a user needs to act or to
//! file a support ticket: what kind of failure it was, the gRPC code and message, the method,
//! the client request id (`x-client-request-id`, also sent to the cloud), the server request id
//! when the server returned one, and how many attempts were made.

use std::{error::Error as StdError, fmt, time::Duration};

/// Boxed source error.
pub(crate) type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// `Result` with the SDK's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in broad strokes. New kinds may be added, so match with a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The server answered with a non-OK gRPC status (see [`Error::code`]).
    Rpc,
    /// The call's overall deadline or an attempt timeout elapsed.
    Timeout,
    /// The connection could not be established or broke (DNS, TCP, HTTP/2).
    Transport,
    /// The server's TLS certificate was rejected (unknown issuer, wrong host name, expired).
    /// Not retried: trust the issuing CA with
    /// [`SdkBuilder::ca_certificate_pem`](crate::SdkBuilder::ca_certificate_pem) or fix the address.
    Tls,
    /// Credentials could not be obtained or exchanged for a token.
    Auth,
    /// An argument given to the SDK was rejected before anything was sent.
    InvalidInput,
    /// The SDK itself is misconfigured (missing folder id, unknown endpoint, …).
    Configuration,
    /// A response could not be decoded or did not have the expected shape.
    Decode,
    /// A long-running operation finished with an error.
    OperationFailed,
    /// A long-running operation has not finished yet, so it has no result.
    OperationRunning,
    /// An HTTP request got an error status: object storage (dataset upload or download), or
    /// the OpenAI-compatible API (then [`Error::code`] is the status's gRPC equivalent, e.g.
    /// 429 is `RESOURCE_EXHAUSTED`).
    Http,
    /// A dataset failed validation; [`Error::details`] carries every row error.
    InvalidDataset,
}

/// What to do about an error, when the SDK knows: structured, so that a command-line tool or a
/// UI can say it in its own terms (a flag, a button) without parsing the message. `Display`
/// says it in the SDK's terms, and the error's own `Display` ends with it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Remedy {
    /// The call ran out of time: allow it more than `timeout`.
    RaiseTimeout {
        /// The budget that was not enough.
        timeout: Duration,
    },
    /// No folder is configured.
    SetFolderId,
    /// No credentials were found.
    ProvideCredentials,
    /// The server's certificate is signed by a CA the SDK does not trust (a TLS-inspecting
    /// proxy, a private CA): trust that CA.
    TrustCertificateAuthority,
    /// The server's certificate is for another host: check the endpoint's address.
    CheckEndpoint,
    /// Endpoint discovery is off and this service has no address.
    SetServiceEndpoint {
        /// The service id, e.g. `ai-foundation-models`.
        service: String,
    },
    /// A file would be overwritten: allow it, or remove the file.
    AllowOverwrite {
        /// The file that exists.
        path: std::path::PathBuf,
    },
    /// The upload's part size does not fit the file: choose one between these (bytes).
    ChooseChunkSize {
        /// Smallest workable part size.
        min: u64,
        /// Largest workable part size.
        max: u64,
    },
    /// The work is still running and has no result yet: wait for it.
    WaitForCompletion {
        /// The operation or task.
        id: String,
    },
    /// Waiting gave up, but the work goes on: re-attach to it by id later.
    Reattach {
        /// The operation or task.
        id: String,
    },
    /// The request is larger than a server accepts: send less.
    SendLess {
        /// The size limit in bytes.
        limit: usize,
    },
}

impl fmt::Display for Remedy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Remedy::RaiseTimeout { .. } => f.write_str("raise it with `.timeout(...)` if the call needs longer"),
            Remedy::SetFolderId => f.write_str("call SdkBuilder::folder_id(...) or set YC_FOLDER_ID"),
            Remedy::ProvideCredentials => f.write_str(
                "set YC_API_KEY, YC_IAM_TOKEN, YC_OAUTH_TOKEN or YC_SERVICE_ACCOUNT_KEY_FILE, run on a VM with a \
                 service account, or pass Credentials explicitly to the SDK builder",
            ),
            Remedy::TrustCertificateAuthority => f.write_str(
                "if a corporate proxy or a private CA signs it, trust that CA with SdkBuilder::ca_certificate_pem \
                 (ycml: --ca-cert FILE or SSL_CERT_FILE)",
            ),
            Remedy::CheckEndpoint => f.write_str("if the host name is wrong, check the endpoint address"),
            Remedy::SetServiceEndpoint { service } => {
                write!(f, "use SdkBuilder::service_endpoint(\"{service}\", \"host:port\")")
            }
            Remedy::AllowOverwrite { .. } => f.write_str("remove it or pass exist_ok(true)"),
            Remedy::ChooseChunkSize { min, max } => write!(f, "choose a chunk size between {min} and {max} bytes"),
            Remedy::WaitForCompletion { .. } => f.write_str("call wait() or poll status()"),
            Remedy::Reattach { .. } => f.write_str("re-attach with its id"),
            Remedy::SendLess { .. } => f.write_str("send less (shorter messages, fewer or smaller tools)"),
        }
    }
}

/// Structured evidence an error carries besides its message, defined by the domain it comes
/// from (e.g. [`ValidationFailure`](crate::datasets::ValidationFailure),
/// [`BatchFailure`](crate::batch::BatchFailure),
/// [`StreamInterrupted`](crate::completions::StreamInterrupted)); read it with
/// [`Error::details`].
trait Detail: std::any::Any + fmt::Debug + Send + Sync {}

impl<T: std::any::Any + fmt::Debug + Send + Sync> Detail for T {}

/// gRPC status code, independent of the `tonic` version the SDK uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
#[allow(missing_docs)]
pub enum Code {
    Ok = 0,
    Cancelled = 1,
    Unknown = 2,
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    AlreadyExists = 6,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Aborted = 10,
    OutOfRange = 11,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    DataLoss = 15,
    Unauthenticated = 16,
}

impl Code {
    /// Maps a numeric code (as found in `google.rpc.Status.code`); unknown numbers become
    /// [`Code::Unknown`].
    pub fn from_i32(code: i32) -> Code {
        Code::from(tonic::Code::from_i32(code))
    }

    /// The canonical upper-case name, e.g. `UNAVAILABLE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Ok => "OK",
            Code::Cancelled => "CANCELLED",
            Code::Unknown => "UNKNOWN",
            Code::InvalidArgument => "INVALID_ARGUMENT",
            Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Code::NotFound => "NOT_FOUND",
            Code::AlreadyExists => "ALREADY_EXISTS",
            Code::PermissionDenied => "PERMISSION_DENIED",
            Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Code::FailedPrecondition => "FAILED_PRECONDITION",
            Code::Aborted => "ABORTED",
            Code::OutOfRange => "OUT_OF_RANGE",
            Code::Unimplemented => "UNIMPLEMENTED",
            Code::Internal => "INTERNAL",
            Code::Unavailable => "UNAVAILABLE",
            Code::DataLoss => "DATA_LOSS",
            Code::Unauthenticated => "UNAUTHENTICATED",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<tonic::Code> for Code {
    fn from(code: tonic::Code) -> Self {
        use tonic::Code as T;
        match code {
            T::Ok => Code::Ok,
            T::Cancelled => Code::Cancelled,
            T::Unknown => Code::Unknown,
            T::InvalidArgument => Code::InvalidArgument,
            T::DeadlineExceeded => Code::DeadlineExceeded,
            T::NotFound => Code::NotFound,
            T::AlreadyExists => Code::AlreadyExists,
            T::PermissionDenied => Code::PermissionDenied,
            T::ResourceExhausted => Code::ResourceExhausted,
            T::FailedPrecondition => Code::FailedPrecondition,
            T::Aborted => Code::Aborted,
            T::OutOfRange => Code::OutOfRange,
            T::Unimplemented => Code::Unimplemented,
            T::Internal => Code::Internal,
            T::Unavailable => Code::Unavailable,
            T::DataLoss => Code::DataLoss,
            T::Unauthenticated => Code::Unauthenticated,
        }
    }
}

/// An SDK error. Cheap to move (one box); inspect it with the accessors and predicates.
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    message: String,
    code: Option<Code>,
    method: Option<&'static str>,
    client_request_id: Option<String>,
    server_request_id: Option<String>,
    operation_id: Option<String>,
    attempts: u32,
    retryable: bool,
    details: Option<Box<dyn Detail>>,
    remedy: Option<Remedy>,
    source: Option<BoxError>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            inner: Box::new(Inner {
                kind,
                message: message.into(),
                code: None,
                method: None,
                client_request_id: None,
                server_request_id: None,
                operation_id: None,
                attempts: 0,
                retryable: false,
                details: None,
                remedy: None,
                source: None,
            }),
        }
    }

    /// A local validation error; the message names the argument, says what is wrong and what
    /// to do about it.
    pub(crate) fn invalid_input(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::InvalidInput, message)
    }

    pub(crate) fn configuration(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Configuration, message)
    }

    pub(crate) fn decode(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Decode, message)
    }

    pub(crate) fn auth(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Auth, message)
    }

    pub(crate) fn timeout(after: Duration) -> Error {
        let mut e = Error::new(ErrorKind::Timeout, format!("deadline of {after:?} exceeded"))
            .with_remedy(Remedy::RaiseTimeout { timeout: after });
        e.inner.code = Some(Code::DeadlineExceeded);
        e
    }

    /// Builds an error from a gRPC status received from the server or produced by tonic.
    pub(crate) fn from_status(status: tonic::Status) -> Error {
        let code = Code::from(status.code());
        let server_request_id = ["x-request-id", "x-server-request-id"]
            .iter()
            .find_map(|k| status.metadata().get(*k))
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // tonic reports connection failures as UNAVAILABLE/UNKNOWN with a transport source, and
        // its own expiry of the `grpc-timeout` we set as CANCELLED with a TimeoutExpired source.
        // A hyper "canceled" error means the connection went away (e.g. GOAWAY) before the
        // request was answered; it never reached the server's handler, so it may be retried.
        let connection_lost = has_source(&status, |e: &hyper::Error| e.is_canceled());
        let transport =
            connection_lost || status.source().is_some() && matches!(code, Code::Unavailable | Code::Unknown);
        let local_timeout = has_source(&status, |_: &tonic::TimeoutExpired| true);
        if let Some(problem) = tls_rejection(&status) {
            return Error::tls(&problem).with_source(status);
        }
        let kind = match code {
            _ if local_timeout => ErrorKind::Timeout,
            Code::DeadlineExceeded => ErrorKind::Timeout,
            _ if transport => ErrorKind::Transport,
            _ => ErrorKind::Rpc,
        };
        let message = status.message().to_owned();
        let mut e = Error::new(kind, message);
        e.inner.code = Some(if local_timeout { Code::DeadlineExceeded } else { code });
        e.inner.server_request_id = server_request_id;
        e.inner.retryable = matches!(code, Code::Unavailable | Code::ResourceExhausted);
        e.inner.source = Some(Box::new(status));
        e
    }

    /// The server's certificate was rejected; says what to do about it.
    pub(crate) fn tls(problem: &rustls::CertificateError) -> Error {
        use rustls::CertificateError as C;
        let remedy = match problem {
            C::NotValidForName | C::NotValidForNameContext { .. } => Remedy::CheckEndpoint,
            _ => Remedy::TrustCertificateAuthority,
        };
        Error::new(ErrorKind::Tls, format!("the server's TLS certificate was rejected ({problem})")).with_remedy(remedy)
    }

    /// A transport failure with its cause, recognising rejected certificates.
    pub(crate) fn transport(context: &str, source: impl StdError + Send + Sync + 'static) -> Error {
        match tls_rejection(&source) {
            Some(problem) => Error::tls(&problem).with_source(source),
            None => Error::new(ErrorKind::Transport, format!("{context}: {source}")).with_source(source),
        }
    }

    pub(crate) fn with_source(mut self, source: impl Into<BoxError>) -> Error {
        self.inner.source = Some(source.into());
        self
    }

    /// Prefixes the message with what the SDK was doing.
    pub(crate) fn context(mut self, what: &str) -> Error {
        self.inner.message = format!("{what}: {}", self.inner.message);
        self
    }

    pub(crate) fn with_server_request_id(mut self, id: Option<String>) -> Error {
        self.inner.server_request_id = id;
        self
    }

    pub(crate) fn with_code(mut self, code: Code) -> Error {
        self.inner.code = Some(code);
        self
    }

    pub(crate) fn with_call(mut self, method: &'static str, client_request_id: &str, attempts: u32) -> Error {
        self.inner.method = Some(method);
        if self.inner.client_request_id.is_none() {
            self.inner.client_request_id = Some(client_request_id.to_owned());
        }
        self.inner.attempts = attempts;
        self
    }

    /// Adds the failure of an earlier attempt to a timeout, so the message says why the call
    /// never succeeded (e.g. a refused connection), not only that time ran out.
    pub(crate) fn after_failure(mut self, earlier: &Error) -> Error {
        let mut cause = earlier.to_string();
        if let Some(root) = root_cause(earlier).filter(|r| !cause.contains(r.as_str())) {
            cause = format!("{cause} ({root})");
        }
        self.inner.message = format!("{}; the previous attempt failed: {cause}", self.inner.message);
        self
    }

    /// Appends a note in parentheses to the message, e.g. how far a stream got.
    pub(crate) fn noted(mut self, note: &str) -> Error {
        self.inner.message = format!("{} ({note})", self.inner.message);
        self
    }

    pub(crate) fn with_details<D: std::any::Any + fmt::Debug + Send + Sync>(mut self, details: D) -> Error {
        self.inner.details = Some(Box::new(details));
        self
    }

    pub(crate) fn with_remedy(mut self, remedy: Remedy) -> Error {
        self.inner.remedy = Some(remedy);
        self
    }

    pub(crate) fn set_retryable(&mut self, retryable: bool) {
        self.inner.retryable = retryable;
    }

    pub(crate) fn with_attempts(mut self, attempts: u32) -> Error {
        self.inner.attempts = attempts;
        self
    }

    pub(crate) fn with_operation_id(mut self, id: impl Into<String>) -> Error {
        self.inner.operation_id = Some(id.into());
        self
    }

    /// The broad category of the failure.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The gRPC status code, when the failure has one (server answers, timeouts).
    pub fn code(&self) -> Option<Code> {
        self.inner.code
    }

    /// The human-readable message (the server's status message for RPC errors).
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// The gRPC path of the RPC that failed, with its leading slash, e.g.
    /// `/yandex.cloud.ai.foundation_models.v1.TextGenerationService/Completion`.
    pub fn method(&self) -> Option<&str> {
        self.inner.method
    }

    /// The `x-client-request-id` the SDK sent with every attempt of this call.
    pub fn client_request_id(&self) -> Option<&str> {
        self.inner.client_request_id.as_deref()
    }

    /// The server's own request id, when it returned one in the response metadata.
    pub fn server_request_id(&self) -> Option<&str> {
        self.inner.server_request_id.as_deref()
    }

    /// The long-running operation this error belongs to, if any.
    pub fn operation_id(&self) -> Option<&str> {
        self.inner.operation_id.as_deref()
    }

    /// Structured evidence of type `D`, if the error carries it: every row error of a dataset
    /// that failed validation ([`ValidationFailure`](crate::datasets::ValidationFailure)), the
    /// partial result of a failed batch ([`BatchFailure`](crate::batch::BatchFailure)), how
    /// far a broken stream got ([`StreamInterrupted`](crate::completions::StreamInterrupted)).
    pub fn details<D: std::any::Any>(&self) -> Option<&D> {
        let details: &dyn std::any::Any = self.inner.details.as_deref()?;
        details.downcast_ref()
    }

    /// What to do about it, when the SDK knows. The message ([`message`](Self::message)) says
    /// what went wrong; `Display` says both.
    pub fn remedy(&self) -> Option<&Remedy> {
        self.inner.remedy.as_ref()
    }

    /// How many attempts were made before giving up (0 when nothing was sent).
    pub fn attempts(&self) -> u32 {
        self.inner.attempts
    }

    /// True for transient failures: those the call's retry policy retries (by default
    /// UNAVAILABLE, RESOURCE_EXHAUSTED, broken connections and timed-out attempts). A call that
    /// fails with one has used its retries already.
    pub fn is_retryable(&self) -> bool {
        self.inner.retryable || self.inner.kind == ErrorKind::Transport
    }

    /// True when a deadline or timeout elapsed (locally or as DEADLINE_EXCEEDED from the server).
    pub fn is_timeout(&self) -> bool {
        self.inner.kind == ErrorKind::Timeout || self.inner.code == Some(Code::DeadlineExceeded)
    }

    /// True for authentication and authorisation failures: missing or rejected credentials
    /// (UNAUTHENTICATED), no access to the folder (PERMISSION_DENIED), failed token exchange.
    pub fn is_auth(&self) -> bool {
        self.inner.kind == ErrorKind::Auth
            || matches!(self.inner.code, Some(Code::Unauthenticated | Code::PermissionDenied))
    }

    /// True when the SDK rejected an argument locally, before sending anything.
    pub fn is_invalid_input(&self) -> bool {
        self.inner.kind == ErrorKind::InvalidInput
    }

    /// True when the server rejected the request as invalid (INVALID_ARGUMENT).
    pub fn is_invalid_argument(&self) -> bool {
        self.inner.code == Some(Code::InvalidArgument)
    }

    /// True when the thing asked for does not exist (NOT_FOUND), e.g. an unknown operation id.
    pub fn is_not_found(&self) -> bool {
        self.inner.code == Some(Code::NotFound)
    }
}

/// The text of the innermost error in the source chain of `error` (e.g. the operating
/// system's "Connection refused" under a transport error), if there is one.
fn root_cause(error: &(dyn StdError + 'static)) -> Option<String> {
    let mut current = error.source()?;
    while let Some(next) = current.source() {
        current = next;
    }
    Some(current.to_string())
}

/// Whether some error in the source chain of `error` is an `E` matching `matches`.
fn has_source<E: StdError + 'static>(error: &(dyn StdError + 'static), matches: impl Fn(&E) -> bool) -> bool {
    let mut current = error.source();
    while let Some(e) = current {
        if e.downcast_ref::<E>().is_some_and(&matches) {
            return true;
        }
        current = e.source();
    }
    false
}

/// The certificate problem, if `error` (or a cause of it) is a rejected server certificate.
/// I/O errors hide their payload from `source()`, so they are opened explicitly.
pub(crate) fn tls_rejection(error: &(dyn StdError + 'static)) -> Option<rustls::CertificateError> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(rustls::Error::InvalidCertificate(problem)) = e.downcast_ref::<rustls::Error>() {
            return Some(problem.clone());
        }
        // An I/O error's `source` skips the error it wraps (connectors nest them), so look inside.
        current = match e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            Some(wrapped) => Some(wrapped as &(dyn StdError + 'static)),
            None => e.source(),
        };
    }
    None
}

/// An error's text without its remedy: see [`Error::without_remedy`].
pub struct WithoutRemedy<'a>(&'a Error);

impl fmt::Display for WithoutRemedy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.write(f, false)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, true)
    }
}

impl Error {
    /// The error's `Display` without the remedy in it, for a tool that says the
    /// [`remedy`](Self::remedy) in its own terms (a command-line flag, a button).
    pub fn without_remedy(&self) -> WithoutRemedy<'_> {
        WithoutRemedy(self)
    }

    fn write(&self, f: &mut fmt::Formatter<'_>, with_remedy: bool) -> fmt::Result {
        let i = &self.inner;
        if let Some(m) = i.method {
            write!(f, "{m}: ")?;
        }
        if let Some(id) = &i.operation_id {
            write!(f, "operation {id}: ")?;
        }
        match (i.kind, i.code) {
            (ErrorKind::Rpc | ErrorKind::OperationFailed, Some(c)) => write!(f, "{c}: ")?,
            (ErrorKind::Timeout, _) => f.write_str("timeout: ")?,
            (ErrorKind::Transport, _) => f.write_str("transport error: ")?,
            (ErrorKind::Tls, _) => f.write_str("TLS error: ")?,
            (ErrorKind::Http, Some(c)) => write!(f, "{c}: ")?,
            (ErrorKind::Auth, _) => f.write_str("authentication failed: ")?,
            (ErrorKind::InvalidInput, _) => f.write_str("invalid input: ")?,
            (ErrorKind::Configuration, _) => f.write_str("configuration error: ")?,
            (ErrorKind::Decode, _) => f.write_str("unexpected response: ")?,
            _ => {}
        }
        f.write_str(if i.message.is_empty() { "<empty message>" } else { &i.message })?;
        if let Some(remedy) = i.remedy.as_ref().filter(|_| with_remedy) {
            write!(f, "; {remedy}")?;
        }
        let mut extra = Vec::new();
        if let Some(id) = &i.client_request_id {
            extra.push(format!("client request id {id}"));
        }
        if let Some(id) = &i.server_request_id {
            extra.push(format!("server request id {id}"));
        }
        if i.attempts > 1 {
            extra.push(format!("{} attempts", i.attempts));
        }
        if !extra.is_empty() {
            write!(f, " ({})", extra.join(", "))?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        let mut d = f.debug_struct("Error");
        d.field("kind", &i.kind).field("message", &i.message);
        if let Some(c) = i.code {
            d.field("code", &c);
        }
        if let Some(m) = i.method {
            d.field("method", &m);
        }
        if let Some(id) = &i.client_request_id {
            d.field("client_request_id", id);
        }
        if let Some(id) = &i.server_request_id {
            d.field("server_request_id", id);
        }
        if let Some(id) = &i.operation_id {
            d.field("operation_id", id);
        }
        d.field("attempts", &i.attempts);
        if let Some(r) = &i.remedy {
            d.field("remedy", r);
        }
        if let Some(details) = &i.details {
            d.field("details", details);
        }
        if let Some(s) = &i.source {
            d.field("source", s);
        }
        d.finish()
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner.source.as_deref().map(|s| s as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_maps_to_rpc_error_with_predicates() {
        let e = Error::from_status(tonic::Status::unavailable("try later")).with_call("svc/M", "req-1", 5);
        assert_eq!(e.kind(), ErrorKind::Rpc);
        assert_eq!(e.code(), Some(Code::Unavailable));
        assert!(e.is_retryable());
        assert!(!e.is_auth());
        assert_eq!(e.attempts(), 5);
        assert_eq!(e.to_string(), "svc/M: UNAVAILABLE: try later (client request id req-1, 5 attempts)");
    }

    #[test]
    fn auth_and_timeout_predicates() {
        assert!(Error::from_status(tonic::Status::unauthenticated("no")).is_auth());
        assert!(Error::from_status(tonic::Status::permission_denied("no")).is_auth());
        assert!(Error::from_status(tonic::Status::deadline_exceeded("slow")).is_timeout());
        assert!(Error::timeout(Duration::from_secs(1)).is_timeout());
        assert!(!Error::from_status(tonic::Status::invalid_argument("bad")).is_retryable());
        assert!(Error::invalid_input("temperature").is_invalid_input());
    }

    #[test]
    fn code_round_trips_numbers() {
        assert_eq!(Code::from_i32(14), Code::Unavailable);
        assert_eq!(Code::from_i32(999), Code::Unknown);
        assert_eq!(Code::ResourceExhausted.to_string(), "RESOURCE_EXHAUSTED");
    }
}
