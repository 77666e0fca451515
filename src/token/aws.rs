//! `--iam aws`: RDS IAM authentication tokens, signed with credentials found the way the AWS
//! SDKs find them (environment, web identity, container, EC2 instance metadata; see [`chain`]).
//!
//! Credentials are cached across hosts and fetched again a while before they expire; a token is
//! signed for each host, port and user and ends with the earlier of its 15 minutes and its
//! credentials (the [`super::Minter`] keeps it until shortly before that).

mod chain;
mod container;
mod imds;
mod sts;

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::sigv4::{rds_token, TOKEN_LIFETIME_SECS};
use super::{http, Env, Minted, TokenError};
use crate::classify::{TokenProblem, TokenSource};
use crate::conninfo::Secret;

/// Credentials are fetched again this long before they expire (botocore refreshes 10–15
/// minutes early; the credential endpoints renew theirs well before that).
const REFRESH_WINDOW: Duration = Duration::from_secs(5 * 60);
/// Credentials that a failed early refresh leaves must still last this long to sign one more
/// token (the [`super::Minter`]'s own margin for the token it signs).
const TOKEN_MARGIN: Duration = super::MARGIN;

/// AWS credentials: an access key, and for temporary ones a session token and an expiry.
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
    /// When the credentials stop working (`None`: long-term keys).
    pub expires: Option<SystemTime>,
}

impl std::fmt::Debug for AwsCredentials {
    /// The key id only: it names the key without granting anything, as AWS logs do.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AwsCredentials({}, ***)", self.access_key_id)
    }
}

/// The region tokens are signed for: `--aws-region`, else `AWS_REGION`, else
/// `AWS_DEFAULT_REGION`. It must look like a region name, since it becomes part of a host name.
pub fn region(flag: Option<&str>, env: &Env) -> Result<String, TokenError> {
    let found = match flag.filter(|f| !f.is_empty()) {
        Some(flag) => Some(("--aws-region", flag)),
        None => ["AWS_REGION", "AWS_DEFAULT_REGION"]
            .into_iter()
            .find_map(|name| env.get(name).map(|value| (name, value))),
    };
    let problem = match found {
        Some((_, value)) if is_region_name(value) => return Ok(value.to_string()),
        Some((name, _)) => format!("{name} (not a region name such as us-east-1)"),
        None => "--aws-region, AWS_REGION or AWS_DEFAULT_REGION".to_string(),
    };
    Err(TokenError::new(
        TokenSource::AwsRegion,
        TokenProblem::Missing { what: problem },
    ))
}

fn is_region_name(text: &str) -> bool {
    text.len() <= 64
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The `--iam aws` token source.
pub struct Aws {
    env: Env,
    region: String,
    client: http::Client,
    cache: Cache,
}

impl Aws {
    /// A source for `region`, finding credentials through `env` and fetching them with
    /// `client`.
    pub fn new(env: Env, region: String, client: http::Client) -> Self {
        Self {
            env,
            region,
            client,
            cache: Cache::default(),
        }
    }

    /// A token for this host/port/user; credentials cached and refreshed before they expire.
    pub async fn mint(
        &mut self,
        host: &str,
        port: u16,
        user: &str,
        deadline: Instant,
    ) -> Result<Minted, TokenError> {
        let key = (host.to_string(), port, user.to_string());
        self.mint_at(key, SystemTime::now(), deadline).await
    }

    /// Forgets the cached credentials (the server refused a token they signed: they may have
    /// been revoked or rotated early), so the next [`Aws::mint`] fetches new ones.
    pub fn forget(&mut self) {
        self.cache.credentials = None;
    }

    async fn mint_at(
        &mut self,
        key: Key,
        now: SystemTime,
        deadline: Instant,
    ) -> Result<Minted, TokenError> {
        let creds = match self.cache.credentials.take() {
            Some(creds) if lasts(&creds, now, REFRESH_WINDOW) => creds,
            old => match (self.fetch(now, deadline).await, old) {
                (Ok(new), _) => new,
                // As botocore's advisory refresh: a failed early refresh keeps what still works.
                (Err(_), Some(old)) if lasts(&old, now, TOKEN_MARGIN) => old,
                (Err(error), _) => return Err(error),
            },
        };
        let minted = sign(&key, &self.region, &creds, now);
        self.cache.credentials = Some(creds);
        Ok(minted)
    }

    async fn fetch(
        &self,
        now: SystemTime,
        deadline: Instant,
    ) -> Result<AwsCredentials, TokenError> {
        let source = chain::select(&self.env, &self.region, now)?;
        chain::fetch(source, &self.client, deadline).await
    }
}

/// Host, port, user.
type Key = (String, u16, String);

/// What [`Aws`] remembers between attempts, kept apart from the network so the timing is
/// tested with a fixed clock.
#[derive(Default)]
struct Cache {
    credentials: Option<AwsCredentials>,
}

/// Signs a token for `key` with `creds` at `now`.
fn sign(key: &Key, region: &str, creds: &AwsCredentials, now: SystemTime) -> Minted {
    Minted {
        secret: Secret::new(rds_token(&key.0, key.1, &key.2, region, creds, now)),
        expires: Some(token_expiry(now, creds.expires)),
    }
}

/// Whether `creds` still work `margin` after `now` (long-term keys always do).
fn lasts(creds: &AwsCredentials, now: SystemTime, margin: Duration) -> bool {
    creds.expires.is_none_or(|at| now + margin < at)
}

/// When a token signed at `now` stops working: the earlier of its own 15 minutes and its
/// credentials' expiry (never before `now`).
fn token_expiry(now: SystemTime, credentials: Option<SystemTime>) -> SystemTime {
    let own = now + Duration::from_secs(TOKEN_LIFETIME_SECS);
    credentials.map_or(own, |at| at.min(own)).max(now)
}

/// A refusal by a credential endpoint: 429 means "try again shortly", as throttling does.
fn status_problem(code: u16) -> TokenProblem {
    match code {
        429 => TokenProblem::NotReadyYet { code },
        _ => TokenProblem::Status { code },
    }
}

#[cfg(test)]
mod tests;
