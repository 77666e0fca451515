//! Passwords minted for each attempt: cloud IAM tokens (`--iam aws|azure|gcp`) and
//! `--password-command`.
//!
//! Each source turns a snapshot of its environment variables ([`Env`], read by `config`, which
//! alone reads the environment) into a [`Minted`] password with its expiry. The [`Minter`]
//! caches it and mints again before it expires, or at once after the server rejected it. What
//! goes wrong is data ([`TokenError`]: which source, what problem), never the endpoint's reply:
//! a malformed answer can hold a token fragment.

pub mod aws;
pub mod azure;
pub mod command;
pub mod gcp;
pub mod http;
pub mod oauth;
pub mod sigv4;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::classify::{Cloud, TokenProblem, TokenSource};
use crate::conninfo::Secret;

pub use command::PasswordCommand;

/// How each attempt's password is made.
#[derive(Debug, Clone)]
pub enum Method {
    /// `--iam`: a token from the cloud's credential chain (`region`: AWS only, resolved by
    /// `config`).
    Iam {
        cloud: Cloud,
        region: Option<String>,
    },
    /// `--password-command`.
    Command(PasswordCommand),
}

/// What `config` hands the probe: the method and the variables its sources read.
#[derive(Debug, Clone)]
pub struct Settings {
    pub method: Method,
    pub env: Env,
}

/// A token is minted again when less than this is left of its life: an attempt (bounded by
/// `--connect-timeout`) must finish logging in before the server sees it expire, and the
/// SDKs refresh this early too.
pub const MARGIN: Duration = Duration::from_secs(60);

/// An attempt's password, and whether it was minted for this attempt (a rejected cached token
/// is worth one fresh try; a rejected fresh one is the answer).
pub struct Password {
    pub secret: Secret,
    pub fresh: bool,
}

/// A minted token kept for reuse, keyed by what it was minted for (AWS signs host, port and
/// user; the other clouds' tokens fit every host).
struct Cached {
    key: (String, u16, String),
    minted: Minted,
}

/// The live source behind a [`Method`].
enum Source {
    Aws(aws::Aws),
    Azure(azure::Azure),
    Gcp(gcp::Gcp),
    Command(PasswordCommand),
}

/// Makes each attempt's password and keeps tokens while they are good.
pub struct Minter {
    settings: Settings,
    /// Built at the first mint: an unreadable CA bundle is that mint's failure.
    source: Option<Source>,
    cache: Vec<Cached>,
}

impl std::fmt::Debug for Minter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Minter({:?}, {} cached)",
            self.settings.method,
            self.cache.len()
        )
    }
}

impl Minter {
    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            source: None,
            cache: Vec::new(),
        }
    }

    /// The password for `user` at `host:port`, minted by `deadline` unless a cached token has
    /// more than [`MARGIN`] left.
    pub async fn password(
        &mut self,
        host: &str,
        port: u16,
        user: &str,
        deadline: Instant,
    ) -> Result<Password, TokenError> {
        let key = match self.settings.method {
            Method::Iam {
                cloud: Cloud::Aws, ..
            } => (host.to_string(), port, user.to_string()),
            _ => (String::new(), 0, String::new()),
        };
        let now = SystemTime::now();
        self.cache.retain(|c| fresh_enough(&c.minted, now));
        if let Some(cached) = self.cache.iter().find(|c| c.key == key) {
            return Ok(Password {
                secret: cached.minted.secret.clone(),
                fresh: false,
            });
        }
        let minted = self.mint(host, port, user, deadline).await?;
        let secret = minted.secret.clone();
        if minted.expires.is_some() {
            self.cache.push(Cached { key, minted });
        }
        Ok(Password {
            secret,
            fresh: true,
        })
    }

    /// Drops every cached token: the server rejected one (revoked, or its credentials expired
    /// early), so the next attempt mints again at once.
    pub fn forget(&mut self) {
        self.cache.clear();
        if let Some(Source::Aws(aws)) = &mut self.source {
            aws.forget();
        }
    }

    async fn mint(
        &mut self,
        host: &str,
        port: u16,
        user: &str,
        deadline: Instant,
    ) -> Result<Minted, TokenError> {
        if self.source.is_none() {
            self.source = Some(source(&self.settings)?);
        }
        match self.source.as_mut().expect("set above") {
            Source::Aws(aws) => aws.mint(host, port, user, deadline).await,
            Source::Azure(azure) => azure.mint(deadline).await,
            Source::Gcp(gcp) => gcp.mint(deadline).await,
            Source::Command(command) => command.run(deadline).await,
        }
    }
}

/// A token with `expires` set is reused while it has more than [`MARGIN`] to live.
fn fresh_enough(minted: &Minted, now: SystemTime) -> bool {
    minted
        .expires
        .is_some_and(|at| at.duration_since(now).is_ok_and(|left| left > MARGIN))
}

fn source(settings: &Settings) -> Result<Source, TokenError> {
    let env = settings.env.clone();
    Ok(match &settings.method {
        Method::Command(command) => Source::Command(command.clone()),
        Method::Iam { cloud, region } => {
            let client = client(*cloud, &env)?;
            match cloud {
                Cloud::Aws => {
                    let region = region.clone().unwrap_or_default();
                    Source::Aws(aws::Aws::new(env, region, client))
                }
                Cloud::Azure => Source::Azure(azure::Azure::new(env, client)),
                Cloud::Gcp => Source::Gcp(gcp::Gcp::new(env, client)),
            }
        }
    })
}

/// The HTTPS trust: the web roots, plus `AWS_CA_BUNDLE` (AWS) and `SSL_CERT_FILE` (all).
fn client(cloud: Cloud, env: &Env) -> Result<http::Client, TokenError> {
    let mut bundles: Vec<(&'static str, &Path)> = Vec::new();
    if cloud == Cloud::Aws {
        if let Some(path) = env.get("AWS_CA_BUNDLE") {
            bundles.push(("AWS_CA_BUNDLE", Path::new(path)));
        }
    }
    if let Some(path) = env.get("SSL_CERT_FILE") {
        bundles.push(("SSL_CERT_FILE", Path::new(path)));
    }
    http::Client::new(&bundles)
        .map_err(|problem| TokenError::new(TokenSource::NoSource(cloud), problem))
}

/// The environment variables the token sources read, as `config` found them.
#[derive(Clone, Default)]
pub struct Env(BTreeMap<&'static str, String>);

impl Env {
    /// Builds the snapshot from a lookup (`config` passes `std::env::var`); only names in
    /// [`VARIABLES`] are kept.
    pub fn read(mut lookup: impl FnMut(&str) -> Option<String>) -> Self {
        let mut map = BTreeMap::new();
        for &name in VARIABLES {
            if let Some(value) = lookup(name) {
                map.insert(name, value);
            }
        }
        Self(map)
    }

    /// A snapshot of exactly `pairs` (tests).
    #[cfg(test)]
    pub fn of(pairs: &[(&str, &str)]) -> Self {
        Self::read(|name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        })
    }

    /// A variable's value; an empty one counts as unset, as in the cloud SDKs.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

impl std::fmt::Debug for Env {
    /// Names only: some values are secrets (AWS_SECRET_ACCESS_KEY, session tokens).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

/// Every variable a token source reads.
pub const VARIABLES: &[&str] = &[
    // AWS
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_STS",
    "AWS_STS_REGIONAL_ENDPOINTS",
    "AWS_CA_BUNDLE",
    // Azure
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_AUTHORITY_HOST",
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
    // Google
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GCE_METADATA_HOST",
    "GCE_METADATA_IP",
    // All
    "SSL_CERT_FILE",
];

/// A password a source minted, and when it stops working (`None`: never, as far as pgwait
/// knows).
pub struct Minted {
    pub secret: Secret,
    pub expires: Option<SystemTime>,
}

impl std::fmt::Debug for Minted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Minted(***, expires {:?})", self.expires)
    }
}

/// Why a source gave no password: which source, and what was wrong (data; `report` words it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenError {
    pub source: TokenSource,
    pub problem: TokenProblem,
}

impl TokenError {
    pub fn new(source: TokenSource, problem: TokenProblem) -> Self {
        Self { source, problem }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minted(expires_in: Option<i64>, now: SystemTime) -> Minted {
        Minted {
            secret: Secret::new("t".into()),
            expires: expires_in.map(|s| match s >= 0 {
                true => now + Duration::from_secs(s as u64),
                false => now - Duration::from_secs(s.unsigned_abs()),
            }),
        }
    }

    #[test]
    fn a_token_is_reused_only_with_more_than_the_margin_left() {
        let now = SystemTime::now();
        let table = [
            (Some(3600), true),
            (Some(61), true),
            (Some(60), false),
            (Some(1), false),
            (Some(-5), false),
            // A command's password has no known life: it is asked for again every attempt.
            (None, false),
        ];
        for (expires_in, reused) in table {
            assert_eq!(
                fresh_enough(&minted(expires_in, now), now),
                reused,
                "{expires_in:?}"
            );
        }
    }

    fn command_minter(line: &str) -> Minter {
        Minter::new(Settings {
            method: Method::Command(PasswordCommand::parse(line).unwrap()),
            env: Env::default(),
        })
    }

    #[tokio::test]
    async fn a_command_runs_for_every_attempt_and_forget_is_harmless() {
        let dir = std::env::temp_dir().join(format!("pgwait-minter-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let counter = dir.join("count");
        let line = format!("sh -c 'echo x >> {0}; wc -l < {0}'", counter.display());
        let mut minter = command_minter(&line);
        let deadline = Instant::now() + Duration::from_secs(10);
        for want in ["1", "2", "3"] {
            let password = minter.password("db", 5432, "app", deadline).await.unwrap();
            assert_eq!(password.secret.expose().trim(), want);
            assert!(password.fresh);
            minter.forget();
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_environment_snapshot_keeps_only_known_names_and_hides_values() {
        let env = Env::read(|name| match name {
            "AWS_SECRET_ACCESS_KEY" => Some("very-secret".into()),
            "AWS_REGION" => Some("".into()),
            _ => None,
        });
        assert_eq!(env.get("AWS_SECRET_ACCESS_KEY"), Some("very-secret"));
        assert_eq!(env.get("AWS_REGION"), None, "empty is unset");
        assert_eq!(env.get("HOME"), None, "not a token variable");
        let shown = format!("{env:?}");
        assert!(
            shown.contains("AWS_SECRET_ACCESS_KEY") && !shown.contains("very-secret"),
            "{shown}"
        );
        let minted = minted(Some(5), SystemTime::now());
        assert!(
            format!("{minted:?}").starts_with("Minted(***, "),
            "{minted:?}"
        );
    }
}
