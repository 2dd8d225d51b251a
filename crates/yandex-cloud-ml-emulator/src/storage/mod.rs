//! Object storage for dataset files (a leaf: it knows no service and no `State`): presigned
//! upload and download URLs, signed with a key of this emulator (kept in the data directory,
//! so URLs outlive a restart), bound to one dataset, one file and a size, expiring after a day
//! like the cloud's, refused the way S3 refuses them; and the blob files (`blobs`). The HTTP
//! handlers that serve them on the API port are `services::storage`.

pub(crate) mod blobs;

use std::{
    path::Path,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;

/// How long presigned URLs stay valid (the cloud's are a day).
pub(crate) const URL_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// What a signed URL allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Grant {
    /// PUT the whole file (`part` 0, exactly `size` bytes) or one part of a multipart upload
    /// (1-based, at most `size` bytes: the parts' sizes are the client's choice, their sum is
    /// checked), of the dataset's upload number `generation` (a later upload voids the URL).
    Upload { dataset: String, part: u32, size: u64, generation: u64 },
    /// GET one file of a dataset.
    Download { dataset: String, key: String },
}

/// Signs URLs with HMAC-SHA256.
pub(crate) struct Signer {
    key: ring::hmac::Key,
}

/// The signed part of a URL's query.
#[derive(Deserialize)]
pub(crate) struct Signed {
    pub expires: u64,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub generation: u64,
    pub sig: String,
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Signer {
    /// A signer with a key kept in `dir/signing.key` (created on first use), or a fresh key
    /// for an emulator that keeps nothing.
    pub(crate) fn new(dir: Option<&Path>) -> std::io::Result<Signer> {
        let fresh = || {
            let mut secret = [0u8; 32];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut secret)
                .map_err(|_| std::io::Error::other("no system randomness for the URL signing key"))?;
            Ok::<_, std::io::Error>(secret.to_vec())
        };
        let secret = match dir.map(|d| d.join("signing.key")) {
            None => fresh()?,
            Some(path) => match std::fs::read(&path) {
                Ok(secret) if secret.len() == 32 => secret,
                Ok(_) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("{} is not a URL signing key (32 bytes); remove it to make a new one", path.display()),
                    ));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let secret = fresh()?;
                    write_private(&path, &secret)?;
                    secret
                }
                Err(e) => return Err(std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
            },
        };
        Ok(Signer { key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret) })
    }

    pub(crate) fn path(grant: &Grant) -> String {
        match grant {
            Grant::Upload { dataset, part: 0, .. } => format!("/storage/upload/{dataset}"),
            Grant::Upload { dataset, part, .. } => format!("/storage/upload/{dataset}/{part}"),
            Grant::Download { dataset, key } => format!("/storage/download/{dataset}/{key}"),
        }
    }

    fn signature(&self, method: &str, path: &str, expires: u64, size: u64, generation: u64) -> String {
        let signed = format!("{method}\n{path}\n{expires}\n{size}\n{generation}");
        hex(ring::hmac::sign(&self.key, signed.as_bytes()).as_ref())
    }

    /// A presigned URL for `grant` under `base` (`http://host:port`).
    pub(crate) fn url(&self, base: &str, grant: &Grant) -> String {
        let (method, size, generation) = match grant {
            Grant::Upload { size, generation, .. } => ("PUT", *size, *generation),
            Grant::Download { .. } => ("GET", 0, 0),
        };
        let path = Self::path(grant);
        let expires = now() + URL_LIFETIME.as_secs();
        let sig = self.signature(method, &path, expires, size, generation);
        format!("{base}{path}?expires={expires}&size={size}&generation={generation}&sig={sig}")
    }

    /// Checks a request's signature (constant time) and expiry.
    pub(crate) fn verify(&self, method: &str, path: &str, q: &Signed) -> Result<(), S3Error> {
        let expected = self.signature(method, path, q.expires, q.size, q.generation);
        let same = expected.len() == q.sig.len()
            && expected.bytes().zip(q.sig.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
        if !same {
            return Err(s3_error(
                StatusCode::FORBIDDEN,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            ));
        }
        if now() > q.expires {
            return Err(s3_error(StatusCode::FORBIDDEN, "AccessDenied", "Request has expired"));
        }
        Ok(())
    }
}

/// Writes a file only its owner can read (the URL signing key).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(bytes)
}

/// An S3-style XML error.
#[derive(Debug)]
pub(crate) struct S3Error {
    status: StatusCode,
    code: &'static str,
    message: String,
}

pub(crate) fn s3_error(status: StatusCode, code: &'static str, message: &str) -> S3Error {
    S3Error { status, code, message: message.to_owned() }
}

impl IntoResponse for S3Error {
    fn into_response(self) -> Response {
        let (code, message) = (self.code, self.message);
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"
        );
        (self.status, [(header::CONTENT_TYPE, "application/xml")], body).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(url: &str) -> Signed {
        let query = url.split_once('?').unwrap().1;
        let get = |k: &str| query.split('&').find_map(|kv| kv.strip_prefix(&format!("{k}="))).unwrap().to_owned();
        Signed {
            expires: get("expires").parse().unwrap(),
            size: get("size").parse().unwrap(),
            generation: get("generation").parse().unwrap(),
            sig: get("sig"),
        }
    }

    #[test]
    fn signatures_bind_method_path_size_and_expiry() {
        let s = Signer::new(None).unwrap();
        let url = s.url("http://h", &Grant::Upload { dataset: "fds1".into(), part: 0, size: 10, generation: 1 });
        assert!(s.verify("PUT", "/storage/upload/fds1", &query(&url)).is_ok());
        assert!(s.verify("PUT", "/storage/upload/fds2", &query(&url)).is_err(), "another dataset");
        assert!(s.verify("GET", "/storage/upload/fds1", &query(&url)).is_err(), "another method");
        assert!(s.verify("PUT", "/storage/upload/fds1", &Signed { size: 11, ..query(&url) }).is_err(), "another size");
        let expired =
            Signed { expires: 1, sig: s.signature("PUT", "/storage/upload/fds1", 1, 10, 1), size: 10, generation: 1 };
        let other_upload = Signed { generation: 2, ..query(&url) };
        assert!(s.verify("PUT", "/storage/upload/fds1", &other_upload).is_err(), "another upload");
        let e = s.verify("PUT", "/storage/upload/fds1", &expired).unwrap_err();
        assert_eq!(
            (e.status, e.code, e.message.as_str()),
            (StatusCode::FORBIDDEN, "AccessDenied", "Request has expired")
        );
        assert!(Signer::new(None).unwrap().verify("PUT", "/storage/upload/fds1", &query(&url)).is_err(), "another key");
    }

    #[test]
    fn the_key_outlives_a_restart_with_a_data_dir() {
        let dir = std::env::temp_dir().join(format!("ycml-signer-{}", fastrand::u64(..)));
        std::fs::create_dir_all(&dir).unwrap();
        let url = Signer::new(Some(&dir))
            .unwrap()
            .url("http://h", &Grant::Download { dataset: "d".into(), key: "main".into() });
        assert!(Signer::new(Some(&dir)).unwrap().verify("GET", "/storage/download/d/main", &query(&url)).is_ok());
        let _ = std::fs::remove_dir_all(dir);
    }
}
