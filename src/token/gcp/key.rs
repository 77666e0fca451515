//! The `GOOGLE_APPLICATION_CREDENTIALS` file: a service-account key (signed JWT grant) or
//! gcloud's user credentials (refresh-token grant). Errors name the variable and the field,
//! never a value: the file holds a private key or a refresh token.

use std::path::Path;
use std::time::SystemTime;

use ring::signature::RsaKeyPair;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivateKeyDer;
use serde_json::Value;

use super::jwt::{self, Claims};
use super::SCOPE;
use crate::classify::TokenProblem;
use crate::conninfo::Secret;
use crate::token::http::form;
use crate::token::oauth::{self, Draft};

const VARIABLE: &str = "GOOGLE_APPLICATION_CREDENTIALS";
/// Google's token endpoint, where key files without a `token_uri` and user credentials go.
pub const TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
const JWT_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// What the file holds, ready to ask for a token.
pub enum Credentials {
    ServiceAccount(Box<ServiceAccount>),
    AuthorizedUser(AuthorizedUser),
}

/// A service account's key (`"type": "service_account"`).
pub struct ServiceAccount {
    pub email: String,
    pub key: RsaKeyPair,
    pub key_id: Option<String>,
    pub token_uri: String,
}

/// gcloud's application-default user credentials (`"type": "authorized_user"`).
pub struct AuthorizedUser {
    pub client_id: String,
    pub client_secret: Secret,
    pub refresh_token: Secret,
}

/// Reads and parses the file at `path`.
pub fn load(path: &Path) -> Result<Credentials, TokenProblem> {
    parse(&oauth::read_small(VARIABLE, path)?)
}

/// Parses a credentials file's content.
pub fn parse(content: &[u8]) -> Result<Credentials, TokenProblem> {
    let file: Value =
        serde_json::from_slice(content).map_err(|_| unusable("not a JSON credentials file"))?;
    match file.get("type").and_then(Value::as_str) {
        Some("service_account") => {
            ServiceAccount::parse(&file).map(|a| Credentials::ServiceAccount(Box::new(a)))
        }
        Some("authorized_user") => AuthorizedUser::parse(&file).map(Credentials::AuthorizedUser),
        Some(kind @ ("external_account" | "external_account_authorized_user"))
        | Some(kind @ ("impersonated_service_account" | "gdch_service_account")) => {
            Err(unusable(&format!(
                "\"{kind}\" credentials are not supported; use a service-account key, gcloud's \
             user credentials, or the metadata server"
            )))
        }
        Some(_) => Err(unusable("unknown credentials \"type\"")),
        None => Err(unusable("no \"type\"")),
    }
}

impl Credentials {
    /// The token request; a service account signs its assertion at `now`.
    pub fn draft(&self, now: SystemTime) -> Result<Draft, TokenProblem> {
        match self {
            Credentials::ServiceAccount(account) => account.draft(now),
            Credentials::AuthorizedUser(user) => Ok(user.draft()),
        }
    }
}

impl ServiceAccount {
    fn parse(file: &Value) -> Result<ServiceAccount, TokenProblem> {
        Ok(ServiceAccount {
            email: field(file, "client_email")?,
            key: rsa_key(&field(file, "private_key")?)?,
            key_id: field(file, "private_key_id").ok(),
            token_uri: field(file, "token_uri").unwrap_or_else(|_| TOKEN_URI.to_owned()),
        })
    }

    fn draft(&self, now: SystemTime) -> Result<Draft, TokenProblem> {
        let claims = Claims {
            issuer: &self.email,
            scope: SCOPE,
            audience: &self.token_uri,
            key_id: self.key_id.as_deref(),
        };
        let assertion = jwt::assertion(&self.key, &claims, now)
            .ok_or_else(|| unusable("private_key could not sign"))?;
        Ok(post(
            &self.token_uri,
            "token_uri in GOOGLE_APPLICATION_CREDENTIALS",
            form(&[("grant_type", JWT_GRANT), ("assertion", &assertion)]),
        ))
    }
}

impl AuthorizedUser {
    fn parse(file: &Value) -> Result<AuthorizedUser, TokenProblem> {
        Ok(AuthorizedUser {
            client_id: field(file, "client_id")?,
            client_secret: Secret::new(field(file, "client_secret")?),
            refresh_token: Secret::new(field(file, "refresh_token")?),
        })
    }

    fn draft(&self) -> Draft {
        let body = form(&[
            ("client_id", &self.client_id),
            ("client_secret", self.client_secret.expose()),
            ("refresh_token", self.refresh_token.expose()),
            ("grant_type", "refresh_token"),
        ]);
        post(TOKEN_URI, "Google's token endpoint", body)
    }
}

fn post(url: &str, origin: &'static str, body: Vec<u8>) -> Draft {
    Draft {
        method: "POST",
        url: url.to_owned(),
        origin,
        headers: vec![("Content-Type", "application/x-www-form-urlencoded".into())],
        body,
    }
}

/// A non-empty string field; the error names the field only.
fn field(file: &Value, name: &str) -> Result<String, TokenProblem> {
    match file.get(name).and_then(Value::as_str) {
        Some(value) if !value.is_empty() => Ok(value.to_owned()),
        _ => Err(unusable(&format!("no \"{name}\""))),
    }
}

/// The PKCS#8 PEM RSA key Google issues.
fn rsa_key(pem: &str) -> Result<RsaKeyPair, TokenProblem> {
    let not_rsa = || unusable("private_key is not a PKCS#8 PEM RSA key");
    match PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|_| not_rsa())? {
        PrivateKeyDer::Pkcs8(der) => {
            RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).map_err(|_| not_rsa())
        }
        _ => Err(not_rsa()),
    }
}

fn unusable(why: &str) -> TokenProblem {
    TokenProblem::Missing {
        what: format!("{VARIABLE}: {why}"),
    }
}
