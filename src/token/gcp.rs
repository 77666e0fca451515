//! `--iam gcp`: an OAuth access token for Cloud SQL IAM database login, in the order Google's
//! Application Default Credentials look: the `GOOGLE_APPLICATION_CREDENTIALS` file (a
//! service-account key or gcloud's user credentials), else the GCE / GKE metadata server.

mod jwt;
mod key;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use tokio::time::Instant;

use super::http::{escape, Client, Plain};
use super::oauth::{self, Draft};
use super::{Env, Minted, TokenError};
use crate::classify::{TokenProblem, TokenSource};

/// The scope Cloud SQL's IAM login accepts.
pub const SCOPE: &str = "https://www.googleapis.com/auth/sqlservice.login";

const DEFAULT_METADATA_HOST: &str = "metadata.google.internal";
const METADATA_PATH: &str = "/computeMetadata/v1/instance/service-accounts/default/token";
/// GKE's metadata server answers 404 while a new pod's identity is being set up; 429 is
/// throttling. 5xx is retried as any `Status` of 500 and up.
const METADATA_NOT_READY: &[u16] = &[404, 429];
/// Google's token endpoint only throttles; its 4xx (a revoked key, a bad grant) are refusals.
const THROTTLED: &[u16] = &[429];

/// Mints Google tokens from the environment `config` read.
pub struct Gcp {
    env: Env,
    client: Client,
}

impl Gcp {
    /// A minter over `env`, sending through `client`.
    pub fn new(env: Env, client: Client) -> Self {
        Self { env, client }
    }

    /// Asks the key file's token endpoint, or the metadata server, for a token.
    pub async fn mint(&mut self, deadline: Instant) -> Result<Minted, TokenError> {
        match Source::select(&self.env)? {
            Source::KeyFile(path) => self.mint_from_key_file(&path, deadline).await,
            Source::Metadata { host } => self.mint_from_metadata(&host, deadline).await,
        }
        .map_err(|(source, problem)| TokenError::new(source, problem))
    }

    /// The file is read at each mint: keys are rotated by replacing the file.
    async fn mint_from_key_file(&self, path: &Path, deadline: Instant) -> Attempt {
        let fail = |problem| (TokenSource::GcpKeyFile, problem);
        let now = SystemTime::now();
        let draft = key::load(path).and_then(|c| c.draft(now)).map_err(fail)?;
        let reply = oauth::exchange(&self.client, draft, Plain::LocalOnly, deadline, THROTTLED)
            .await
            .map_err(fail)?;
        oauth::parse_token(&reply.body, now).map_err(fail)
    }

    async fn mint_from_metadata(&self, host: &str, deadline: Instant) -> Attempt {
        let fail = |problem| (TokenSource::GcpMetadata, problem);
        let now = SystemTime::now();
        let draft = metadata_draft(host);
        let reply = oauth::exchange(
            &self.client,
            draft,
            Plain::LocalOnly,
            deadline,
            METADATA_NOT_READY,
        )
        .await
        .map_err(fail)?;
        check_flavor(&reply.headers).map_err(fail)?;
        oauth::parse_token(&reply.body, now).map_err(fail)
    }
}

/// A mint's result before the source is attached to its error.
type Attempt = Result<Minted, (TokenSource, TokenProblem)>;

/// Where the token comes from.
#[derive(Debug, PartialEq, Eq)]
enum Source {
    KeyFile(PathBuf),
    /// `host[:port]` of the metadata server.
    Metadata {
        host: String,
    },
}

impl Source {
    fn select(env: &Env) -> Result<Source, TokenError> {
        if let Some(path) = env.get("GOOGLE_APPLICATION_CREDENTIALS") {
            return Ok(Source::KeyFile(PathBuf::from(path)));
        }
        let host = env
            .get("GCE_METADATA_HOST")
            .unwrap_or(DEFAULT_METADATA_HOST);
        if !valid_host(host) {
            let what = "GCE_METADATA_HOST: not a host[:port]".to_owned();
            return Err(TokenError::new(
                TokenSource::GcpMetadata,
                TokenProblem::Missing { what },
            ));
        }
        Ok(Source::Metadata {
            host: host.to_owned(),
        })
    }
}

/// The host goes into a URL: no `/`, `?`, `@` or `#` that would move the request elsewhere.
fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
}

/// The metadata server's token request for the default service account.
fn metadata_draft(host: &str) -> Draft {
    Draft {
        method: "GET",
        url: format!("http://{host}{METADATA_PATH}?scopes={}", escape(SCOPE)),
        origin: "GCE_METADATA_HOST",
        headers: vec![("Metadata-Flavor", "Google".into())],
        body: Vec::new(),
    }
}

/// The real metadata server says who it is; anything else on that name (a captive portal, a
/// proxy) is not to be believed, as Google's libraries check too.
fn check_flavor(headers: &[(String, String)]) -> Result<(), TokenProblem> {
    let google = headers
        .iter()
        .any(|(name, value)| name == "metadata-flavor" && value.trim() == "Google");
    match google {
        true => Ok(()),
        false => Err(TokenProblem::Malformed {
            what: "Metadata-Flavor header",
        }),
    }
}
