//! Which credential source applies, in the AWS SDKs' order, minus the files pgwait does not
//! read (shared config and credentials files, SSO, `credential_process`):
//!
//! 1. `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` [+ `AWS_SESSION_TOKEN`];
//! 2. `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`: STS AssumeRoleWithWebIdentity (EKS IRSA);
//! 3. `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` / `_FULL_URI` (ECS, EKS Pod Identity);
//! 4. EC2 instance metadata, unless `AWS_EC2_METADATA_DISABLED=true`.
//!
//! Selection reads only the [`Env`] snapshot, so it is tested without a network; fetching is
//! each source's own module.

use std::time::SystemTime;

use tokio::time::Instant;

use super::container::Container;
use super::imds::Imds;
use super::sts::WebIdentity;
use super::AwsCredentials;
use crate::classify::{Cloud, TokenProblem, TokenSource};
use crate::conninfo::Secret;
use crate::token::{http, Env, TokenError};

/// The first configured source.
#[derive(Debug)]
pub(super) enum Source {
    Environment(AwsCredentials),
    WebIdentity(WebIdentity),
    Container(Container),
    Imds(Imds),
}

/// The source the SDKs would use with this environment; a half-configured source is an error
/// rather than a reason to fall through to the next (as in botocore).
pub(super) fn select(env: &Env, region: &str, now: SystemTime) -> Result<Source, TokenError> {
    if let Some(creds) = environment(env)? {
        return Ok(Source::Environment(creds));
    }
    if let Some(web) = WebIdentity::from_env(env, region, now)? {
        return Ok(Source::WebIdentity(web));
    }
    if let Some(container) = Container::from_env(env)? {
        return Ok(Source::Container(container));
    }
    match Imds::from_env(env)? {
        Some(imds) => Ok(Source::Imds(imds)),
        None => Err(TokenError::new(
            TokenSource::NoSource(Cloud::Aws),
            TokenProblem::Missing {
                what: "AWS credentials (AWS_EC2_METADATA_DISABLED=true and no other source)"
                    .to_string(),
            },
        )),
    }
}

/// Fetches credentials from `source`.
pub(super) async fn fetch(
    source: Source,
    client: &http::Client,
    deadline: Instant,
) -> Result<AwsCredentials, TokenError> {
    match source {
        Source::Environment(creds) => Ok(creds),
        Source::WebIdentity(web) => web.fetch(client, deadline).await,
        Source::Container(container) => container.fetch(client, deadline).await,
        Source::Imds(imds) => imds.fetch(client, deadline).await,
    }
}

/// Long-term or session keys from the environment; `None` when no access key is set.
fn environment(env: &Env) -> Result<Option<AwsCredentials>, TokenError> {
    let (id, secret) = (
        env.get("AWS_ACCESS_KEY_ID"),
        env.get("AWS_SECRET_ACCESS_KEY"),
    );
    let missing = |what: &str| {
        TokenError::new(
            TokenSource::AwsEnvironment,
            TokenProblem::Missing {
                what: what.to_string(),
            },
        )
    };
    match (id, secret) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(missing("AWS_SECRET_ACCESS_KEY")),
        (None, Some(_)) => Err(missing("AWS_ACCESS_KEY_ID")),
        (Some(id), Some(secret)) => Ok(Some(AwsCredentials {
            access_key_id: id.to_string(),
            secret_access_key: Secret::new(secret.to_string()),
            session_token: env
                .get("AWS_SESSION_TOKEN")
                .map(|t| Secret::new(t.to_string())),
            expires: None,
        })),
    }
}

#[cfg(test)]
mod tests;
