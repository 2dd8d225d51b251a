//! Credentials never leave the emulator in clear: headers and message fields that carry them
//! are replaced by a short fingerprint in the journal and the logs, so two requests with the
//! same credential can still be told apart from two with different ones.

use std::hash::{Hash, Hasher};

use serde_json::Value;

/// `***` and 8 hex digits of a stable hash of `secret`.
pub(crate) fn fingerprint(secret: &str) -> String {
    // SipHash with fixed keys: the same secret gives the same fingerprint in every run.
    let mut h = std::hash::DefaultHasher::new();
    secret.hash(&mut h);
    format!("***{:08x}", h.finish() as u32)
}

/// Whether a header or field name carries a credential.
fn sensitive_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase().replace(['-', '_'], "");
    // Counts (`maxTokens`, `inputTextTokens`) are not credentials, even as int64 strings.
    if n == "idempotencykey" || n.ends_with("tokens") {
        return false;
    }
    ["authorization", "cookie", "token", "secret", "password", "key", "jwt", "credential"].iter().any(|s| n.contains(s))
}

/// A header value as shown in the journal.
pub(crate) fn header(name: &str, value: &str) -> String {
    if name.eq_ignore_ascii_case("authorization") || name.eq_ignore_ascii_case("proxy-authorization") {
        // Keep a known scheme: which kind of credential was sent is useful, the credential is not.
        return match value.split_once(' ') {
            Some((scheme @ ("Bearer" | "Api-Key" | "Basic"), credential)) => {
                format!("{scheme} {}", fingerprint(credential))
            }
            _ => fingerprint(value),
        };
    }
    if sensitive_name(name) { fingerprint(value) } else { value.to_owned() }
}

/// Replaces every string field whose name carries a credential (`yandexPassportOauthToken`,
/// `jwt`, `iamToken`, …), at any depth of a message rendered as protobuf JSON. Counts such as
/// `inputTextTokens` are numbers and stay.
pub(crate) fn message(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                match v {
                    Value::String(s) if sensitive_name(k) => *s = fingerprint(s),
                    _ => message(v),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(message),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn credentials_are_fingerprinted_and_the_rest_kept() {
        assert_eq!(header("authorization", "Bearer t1.secret"), format!("Bearer {}", fingerprint("t1.secret")));
        assert!(header("authorization", "rawkey").starts_with("***"));
        assert!(!header("authorization", "rawkey").contains("rawkey"));
        for name in ["cookie", "proxy-authorization", "x-yc-password", "x-api-key", "x-session-token"] {
            assert!(!header(name, "s3cr3t").contains("s3cr3t"), "{name}");
        }
        assert_eq!(header("idempotency-key", "abc"), "abc");
        assert_eq!(header("x-client-request-id", "abc"), "abc");
        let mut m = json!({"yandexPassportOauthToken": "y0_secret", "jwt": "a.b.c", "iamToken": "t1.x",
                           "usage": {"inputTextTokens": "12"}, "nested": [{"apiKey": "k"}], "text": "hello"});
        message(&mut m);
        let shown = m.to_string();
        for secret in ["y0_secret", "a.b.c", "t1.x", "\"k\""] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("hello") && shown.contains("\"12\""), "{shown}");
        assert_eq!(fingerprint("x"), fingerprint("x"));
        assert_ne!(fingerprint("x"), fingerprint("y"));
    }
}
