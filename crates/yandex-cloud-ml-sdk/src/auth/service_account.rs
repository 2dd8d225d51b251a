//! Service-account authorized keys: parsing the JSON key file and signing the PS256 JWT that
//! `IamTokenService/Create` exchanges for an IAM token.

use std::{
    fmt,
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use base64::{Engine, engine::general_purpose::STANDARD, engine::general_purpose::URL_SAFE_NO_PAD};
use ring::{rand::SystemRandom, signature::RsaKeyPair};

use crate::error::{Error, Result};

/// The audience every service-account JWT must name.
pub(crate) const IAM_TOKEN_AUDIENCE: &str = "https://iam.api.cloud.yandex.net/iam/v1/tokens";
/// Lifetime of the JWT itself (the IAM token it buys lives longer).
const JWT_LIFETIME_SECS: u64 = 3600;

/// A parsed service-account authorized key (`yc iam key create --output key.json`).
/// The private key never appears in `Debug` output or errors.
#[derive(Clone)]
pub struct ServiceAccountKey {
    key_id: String,
    service_account_id: String,
    key_pair: Arc<RsaKeyPair>,
}

impl fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("key_id", &self.key_id)
            .field("service_account_id", &self.service_account_id)
            .field("private_key", &"***")
            .finish()
    }
}

#[derive(serde::Deserialize)]
struct KeyFile {
    id: Option<String>,
    service_account_id: Option<String>,
    private_key: Option<String>,
}

impl ServiceAccountKey {
    /// Parses the JSON of an authorized key: `id`, `service_account_id` and a PKCS#8 PEM
    /// `private_key` (the "PLEASE DO NOT REMOVE THIS LINE" header line is allowed).
    pub fn from_json(json: &str) -> Result<ServiceAccountKey> {
        let file: KeyFile = serde_json::from_str(json).map_err(|e| {
            Error::invalid_input(format!(
                "service account key is not valid JSON (line {}, column {}); expected the file written by `yc iam key create`",
                e.line(),
                e.column()
            ))
        })?;
        let missing = |field: &str| Error::invalid_input(format!("service account key JSON has no `{field}` field"));
        let key_id = file.id.filter(|s| !s.is_empty()).ok_or_else(|| missing("id"))?;
        let service_account_id =
            file.service_account_id.filter(|s| !s.is_empty()).ok_or_else(|| missing("service_account_id"))?;
        let pem = file.private_key.ok_or_else(|| missing("private_key"))?;
        let der = pem_to_der(&pem)?;
        let key_pair = RsaKeyPair::from_pkcs8(&der).map_err(|e| {
            Error::invalid_input(format!(
                "service account `private_key` is not a PKCS#8 RSA key ({e}); expected `-----BEGIN PRIVATE KEY-----`"
            ))
        })?;
        Ok(ServiceAccountKey { key_id, service_account_id, key_pair: Arc::new(key_pair) })
    }

    /// The key id (`kid` of the JWT).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The service account the key belongs to (`iss` of the JWT).
    pub fn service_account_id(&self) -> &str {
        &self.service_account_id
    }

    /// Builds and signs a PS256 JWT for `IamTokenService/Create`, issued now.
    pub(crate) fn signed_jwt(&self) -> Result<String> {
        let iat = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        self.signed_jwt_at(iat)
    }

    fn signed_jwt_at(&self, iat: u64) -> Result<String> {
        let header = serde_json::json!({"typ": "JWT", "alg": "PS256", "kid": self.key_id});
        let claims = serde_json::json!({
            "iss": self.service_account_id,
            "aud": IAM_TOKEN_AUDIENCE,
            "iat": iat,
            "exp": iat + JWT_LIFETIME_SECS,
        });
        let signing_input =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let mut signature = vec![0; self.key_pair.public().modulus_len()];
        self.key_pair
            .sign(&ring::signature::RSA_PSS_SHA256, &SystemRandom::new(), signing_input.as_bytes(), &mut signature)
            .map_err(|_| Error::auth("could not sign the service account JWT"))?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

/// Extracts the DER body of the first PEM `PRIVATE KEY` block.
fn pem_to_der(pem: &str) -> Result<Vec<u8>> {
    const BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
    const END: &str = "-----END PRIVATE KEY-----";
    let start = pem.find(BEGIN).map(|i| i + BEGIN.len());
    let end = pem.find(END);
    let (Some(start), Some(end)) = (start, end) else {
        return Err(Error::invalid_input("service account `private_key` has no `-----BEGIN PRIVATE KEY-----` block"));
    };
    let body: String = pem[start..end].chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD
        .decode(body)
        .map_err(|_| Error::invalid_input("service account `private_key` PEM body is not valid base64"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A throwaway 2048-bit key generated for these tests only; it grants nothing anywhere.
    pub(crate) const TEST_KEY_JSON: &str = include_str!("../../tests/data/test-service-account-key.json");

    #[test]
    fn parses_key_and_hides_private_part() {
        let key = ServiceAccountKey::from_json(TEST_KEY_JSON).unwrap();
        assert_eq!(key.key_id(), "ajetestkeyid0000000");
        assert_eq!(key.service_account_id(), "ajetestserviceacc00");
        let debug = format!("{key:?}");
        assert!(debug.contains("***") && !debug.contains("BEGIN"));
    }

    #[test]
    fn jwt_has_expected_header_claims_and_a_valid_ps256_signature() {
        let key = ServiceAccountKey::from_json(TEST_KEY_JSON).unwrap();
        let jwt = key.signed_jwt_at(1_700_000_000).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(header, serde_json::json!({"typ": "JWT", "alg": "PS256", "kid": "ajetestkeyid0000000"}));
        assert_eq!(claims["iss"], "ajetestserviceacc00");
        assert_eq!(claims["aud"], IAM_TOKEN_AUDIENCE);
        assert_eq!(claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(), 3600);

        let public = ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PSS_2048_8192_SHA256,
            key.key_pair.public().as_ref().to_vec(),
        );
        let signed = format!("{}.{}", parts[0], parts[1]);
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        public.verify(signed.as_bytes(), &signature).expect("signature verifies");
        // A tampered claim set must not verify.
        assert!(public.verify(b"x.y", &signature).is_err());
    }

    #[test]
    fn malformed_keys_get_clear_errors_without_key_material() {
        let e = ServiceAccountKey::from_json("{").unwrap_err();
        assert!(e.is_invalid_input() && e.to_string().contains("not valid JSON"));
        let e = ServiceAccountKey::from_json(r#"{"id":"a","private_key":"x"}"#).unwrap_err();
        assert!(e.to_string().contains("service_account_id"));
        let e = ServiceAccountKey::from_json(r#"{"id":"a","service_account_id":"b","private_key":"secret-stuff"}"#)
            .unwrap_err();
        assert!(e.to_string().contains("BEGIN PRIVATE KEY") && !e.to_string().contains("secret-stuff"));
    }
}
