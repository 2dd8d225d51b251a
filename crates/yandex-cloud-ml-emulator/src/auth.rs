//! Authorization checks of cloud API calls, answered like the cloud: `UNAUTHENTICATED` for a
//! missing, malformed, unknown or expired credential.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::Value;
use tonic::Status;

use crate::{
    config::AuthMode,
    state::{State, tokens::TokenCheck},
};

/// The audience a service-account JWT must name.
const JWT_AUDIENCE: &str = "https://iam.api.cloud.yandex.net/iam/v1/tokens";

/// Checks the `authorization` header; returns the subject id to record as `created_by`.
pub(crate) fn authenticate(state: &State, headers: &http::HeaderMap) -> Result<String, Status> {
    let header = headers.get("authorization").map(|v| {
        v.to_str().map_err(|_| {
            Status::unauthenticated("The authorization header has non-ASCII characters: check the credential")
        })
    });
    let header = header.transpose()?;
    if state.config.auth == AuthMode::Open {
        return Ok("emulator-anonymous".into());
    }
    let Some(header) = header else {
        return Err(Status::unauthenticated("The request is missing the authorization header"));
    };
    let (scheme, credential) = header.split_once(' ').map(|(s, c)| (s, c.trim())).unwrap_or((header, ""));
    if credential.is_empty() {
        return Err(Status::unauthenticated("The authorization header is malformed"));
    }
    match scheme {
        "Api-Key" => match &state.config.auth {
            AuthMode::Require { api_keys, .. } if !api_keys.iter().any(|k| k == credential) => {
                Err(Status::unauthenticated("Unknown api key"))
            }
            _ => Ok("emulator-api-key".into()),
        },
        "Bearer" => match (state.tokens.check(credential), &state.config.auth) {
            (TokenCheck::Valid, _) => Ok("emulator-iam-subject".into()),
            (TokenCheck::Expired, _) => Err(Status::unauthenticated("The token has expired")),
            (TokenCheck::Invalid, _) => Err(Status::unauthenticated("The token is invalid")),
            (TokenCheck::Foreign, AuthMode::Require { iam_tokens, .. })
                if !iam_tokens.iter().any(|t| t == credential) =>
            {
                Err(Status::unauthenticated("The token is invalid"))
            }
            (TokenCheck::Foreign, _) => Ok("emulator-iam-subject".into()),
        },
        _ => Err(Status::unauthenticated(format!(
            "Unsupported authorization scheme `{}`: use `Api-Key <key>` or `Bearer <IAM token>`",
            crate::text::shown(scheme)
        ))),
    }
}

/// Whether `credential` is an API key the emulator accepts (OpenAI clients send keys as
/// `Bearer`); with any key accepted, only the emulator's own IAM tokens are not keys.
pub(crate) fn is_api_key(state: &State, credential: &str) -> bool {
    match &state.config.auth {
        AuthMode::Require { api_keys, .. } => api_keys.iter().any(|k| k == credential),
        _ => state.tokens.check(credential) == TokenCheck::Foreign,
    }
}

/// Whether an OAuth token may be exchanged.
pub(crate) fn check_oauth(state: &State, token: &str) -> Result<(), Status> {
    if token.trim().is_empty() {
        return Err(Status::invalid_argument("yandex_passport_oauth_token: must not be empty"));
    }
    if token.len() > 4000 {
        return Err(Status::invalid_argument("yandex_passport_oauth_token: longer than 4000 characters"));
    }
    match &state.config.auth {
        AuthMode::Require { oauth_tokens, .. } if !oauth_tokens.iter().any(|t| t == token) => {
            Err(Status::unauthenticated("The OAuth token is invalid"))
        }
        _ => Ok(()),
    }
}

/// Checks the structure and claims of a service-account JWT (the signature cannot be checked
/// without the account's public key, which the emulator does not have).
pub(crate) fn check_jwt(jwt: &str) -> Result<(), Status> {
    let bad = |why: &str| Status::unauthenticated(format!("invalid JWT: {why}"));
    if jwt.len() > 8000 {
        return Err(Status::invalid_argument("jwt: longer than 8000 characters"));
    }
    let parts: Vec<&str> = jwt.split('.').collect();
    let [header, claims, signature] = parts.as_slice() else {
        return Err(bad("expected three dot-separated parts"));
    };
    let decode = |part: &str, what: &str| -> Result<Value, Status> {
        let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| bad(&format!("{what} is not base64url")))?;
        serde_json::from_slice(&bytes).map_err(|_| bad(&format!("{what} is not JSON")))
    };
    let header = decode(header, "header")?;
    let claims = decode(claims, "claims")?;
    if header["alg"] != "PS256" {
        return Err(bad("alg must be PS256"));
    }
    if header["kid"].as_str().is_none_or(str::is_empty) {
        return Err(bad("kid (the key id) is missing"));
    }
    if claims["iss"].as_str().is_none_or(str::is_empty) {
        return Err(bad("iss (the service account id) is missing"));
    }
    if claims["aud"] != JWT_AUDIENCE && !claims["aud"].as_array().is_some_and(|a| a.iter().any(|x| x == JWT_AUDIENCE)) {
        return Err(bad(&format!("aud must be {JWT_AUDIENCE}")));
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    match claims["exp"].as_u64() {
        Some(exp) if exp > now => {}
        Some(_) => return Err(bad("it has expired")),
        None => return Err(bad("exp is missing")),
    }
    if URL_SAFE_NO_PAD.decode(signature).map(|s| s.is_empty()).unwrap_or(true) {
        return Err(bad("signature is missing"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A JWT from JSON header and claims and a signature (base64url of each).
    fn jwt(header: Value, claims: Value, signature: &[u8]) -> String {
        let part = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        format!("{}.{}.{}", part(header.to_string().as_bytes()), part(claims.to_string().as_bytes()), part(signature))
    }

    #[test]
    fn malformed_service_account_jwts_are_refused_saying_what_is_wrong() {
        let far = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() + 3600;
        let header = serde_json::json!({"alg": "PS256", "kid": "key"});
        let claims = serde_json::json!({"iss": "sa", "aud": JWT_AUDIENCE, "exp": far});
        assert!(check_jwt(&jwt(header.clone(), claims.clone(), b"sig")).is_ok());
        let with = |mut v: Value, key: &str, value: Value| {
            v[key] = value;
            v
        };
        let cases = [
            ("a.b".to_owned(), "invalid JWT: expected three dot-separated parts"),
            ("!!.e30.c2ln".to_owned(), "invalid JWT: header is not base64url"),
            (jwt(with(header.clone(), "alg", "RS256".into()), claims.clone(), b"s"), "invalid JWT: alg must be PS256"),
            (
                jwt(with(header.clone(), "kid", "".into()), claims.clone(), b"s"),
                "invalid JWT: kid (the key id) is missing",
            ),
            (
                jwt(header.clone(), with(claims.clone(), "iss", Value::Null), b"s"),
                "invalid JWT: iss (the service account id) is missing",
            ),
            (
                jwt(header.clone(), with(claims.clone(), "aud", "x".into()), b"s"),
                "invalid JWT: aud must be https://iam.api.cloud.yandex.net/iam/v1/tokens",
            ),
            (jwt(header.clone(), with(claims.clone(), "exp", 1.into()), b"s"), "invalid JWT: it has expired"),
            (jwt(header.clone(), with(claims.clone(), "exp", Value::Null), b"s"), "invalid JWT: exp is missing"),
            (jwt(header.clone(), claims.clone(), b""), "invalid JWT: signature is missing"),
        ];
        for (token, message) in cases {
            let status = check_jwt(&token).unwrap_err();
            assert_eq!((status.code(), status.message()), (tonic::Code::Unauthenticated, message));
        }
        let long = check_jwt(&"x".repeat(8001)).unwrap_err();
        assert_eq!((long.code(), long.message()), (tonic::Code::InvalidArgument, "jwt: longer than 8000 characters"));
    }
}
