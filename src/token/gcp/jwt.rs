//! The signed JWT a service account trades for an access token (RFC 7523), and the unpadded
//! base64url (RFC 4648 §5) it is written in. Time is an argument so tests can check the claims.

use std::time::{SystemTime, UNIX_EPOCH};

use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use serde_json::json;

/// How long the assertion is valid: the most Google accepts, as its libraries send.
pub const LIFETIME_SECS: u64 = 3600;

/// Who asks, for what, and of whom.
pub struct Claims<'a> {
    pub issuer: &'a str,
    pub scope: &'a str,
    pub audience: &'a str,
    pub key_id: Option<&'a str>,
}

/// `header.claims.signature`, RS256-signed with `key`; `None` if ring cannot sign (it fails
/// only on a broken key or random source).
pub fn assertion(key: &RsaKeyPair, claims: &Claims, now: SystemTime) -> Option<String> {
    let iat = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let mut header = json!({"alg": "RS256", "typ": "JWT"});
    if let Some(kid) = claims.key_id {
        header["kid"] = kid.into();
    }
    let body = json!({
        "iss": claims.issuer,
        "scope": claims.scope,
        "aud": claims.audience,
        "iat": iat,
        "exp": iat + LIFETIME_SECS,
    });
    let signed = format!(
        "{}.{}",
        base64url(header.to_string().as_bytes()),
        base64url(body.to_string().as_bytes())
    );
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        signed.as_bytes(),
        &mut signature,
    )
    .ok()?;
    Some(format!("{signed}.{}", base64url(&signature)))
}

/// Unpadded base64url: JWTs need no more, so no crate for it.
pub fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        // A chunk of k bytes carries k + 1 sextets; padding is left off.
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}
