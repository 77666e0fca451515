//! `--iam azure`: an Entra ID access token for Azure Database for PostgreSQL, from the first
//! source configured, in the order azure-identity's `DefaultAzureCredential` tries them:
//! workload identity (AKS), the App Service / Container Apps / Functions identity endpoint,
//! then the VM's instance metadata service (IMDS), which is always there to try last.

use std::path::PathBuf;
use std::time::SystemTime;

use tokio::time::Instant;

use super::http::{escape, form, Client, Plain};
use super::oauth::{self, Draft};
use super::{Env, Minted, TokenError};
use crate::classify::{TokenProblem, TokenSource};
use crate::conninfo::Secret;

#[cfg(test)]
mod tests;

/// The resource the managed-identity endpoints mint for.
pub const RESOURCE: &str = "https://ossrdbms-aad.database.windows.net";
/// The same, as an OAuth 2.0 v2 scope (workload identity).
pub const SCOPE: &str = "https://ossrdbms-aad.database.windows.net/.default";

const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com/";
const IMDS_AUTHORITY: &str = "http://169.254.169.254";
const IMDS_PATH: &str = "/metadata/identity/oauth2/token";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// IMDS answers 410 for about 70 s after a boot, 404 until an identity is attached, 429 when
/// throttled: all of them mean "ask again" (azure-identity retries them too).
const IMDS_NOT_READY: &[u16] = &[404, 410, 429];
/// Entra ID and the App Service endpoint only throttle; their 4xx are refusals.
const THROTTLED: &[u16] = &[429];

/// Mints Azure tokens from the environment `config` read.
pub struct Azure {
    env: Env,
    client: Client,
}

impl Azure {
    /// A minter over `env`, sending through `client`.
    pub fn new(env: Env, client: Client) -> Self {
        Self { env, client }
    }

    /// Asks the first configured source for a token; `expires` is the token's own expiry.
    pub async fn mint(&mut self, deadline: Instant) -> Result<Minted, TokenError> {
        let source = Source::select(&self.env)?;
        let fail = |problem| TokenError::new(source.kind(), problem);
        let draft = source.draft().map_err(fail)?;
        // Taken before sending, so a relative `expires_in` errs on the early side.
        let now = SystemTime::now();
        let reply = oauth::exchange(
            &self.client,
            draft,
            Plain::LocalOnly,
            deadline,
            source.not_ready(),
        )
        .await
        .map_err(fail)?;
        oauth::parse_token(&reply.body, now).map_err(fail)
    }
}

/// The source the environment selects.
enum Source {
    Workload(Workload),
    AppService(AppService),
    Imds(Imds),
}

/// AKS workload identity: a federated token exchanged at Entra ID.
struct Workload {
    token_file: PathBuf,
    client_id: String,
    tenant: String,
    /// `https://host[/path]`, without a trailing slash.
    authority: String,
}

/// The App Service family's local identity endpoint.
struct AppService {
    endpoint: String,
    header: Secret,
    client_id: Option<String>,
}

/// The instance metadata service, or the AAD Pod Identity endpoint standing in for it.
struct Imds {
    base: String,
    origin: &'static str,
    client_id: Option<String>,
}

impl Source {
    /// The first source `env` configures; a half-configured one is an error, not skipped, so
    /// the user learns what is missing instead of getting IMDS's silence.
    fn select(env: &Env) -> Result<Source, TokenError> {
        if let Some(file) = env.get("AZURE_FEDERATED_TOKEN_FILE") {
            return Workload::from_env(env, file)
                .map(Source::Workload)
                .map_err(|p| TokenError::new(TokenSource::AzureWorkloadIdentity, p));
        }
        if let Some(endpoint) = env.get("IDENTITY_ENDPOINT") {
            return AppService::from_env(env, endpoint)
                .map(Source::AppService)
                .map_err(|p| TokenError::new(TokenSource::AzureAppService, p));
        }
        Ok(Source::Imds(Imds::from_env(env)))
    }

    fn kind(&self) -> TokenSource {
        match self {
            Source::Workload(_) => TokenSource::AzureWorkloadIdentity,
            Source::AppService(_) => TokenSource::AzureAppService,
            Source::Imds(_) => TokenSource::AzureImds,
        }
    }

    /// The request to send; workload identity reads its token file here, as it is rotated.
    fn draft(&self) -> Result<Draft, TokenProblem> {
        match self {
            Source::Workload(w) => Ok(w.draft(&w.assertion()?)),
            Source::AppService(a) => Ok(a.draft()),
            Source::Imds(i) => Ok(i.draft()),
        }
    }

    fn not_ready(&self) -> &'static [u16] {
        match self {
            Source::Imds(_) => IMDS_NOT_READY,
            Source::Workload(_) | Source::AppService(_) => THROTTLED,
        }
    }
}

impl Workload {
    fn from_env(env: &Env, file: &str) -> Result<Workload, TokenProblem> {
        let needed = ["AZURE_CLIENT_ID", "AZURE_TENANT_ID"];
        let missing: Vec<&str> = needed
            .into_iter()
            .filter(|n| env.get(n).is_none())
            .collect();
        if !missing.is_empty() {
            return Err(TokenProblem::Missing {
                what: format!(
                    "{} (AZURE_FEDERATED_TOKEN_FILE is set: workload identity needs it too)",
                    missing.join(" and ")
                ),
            });
        }
        let tenant = env.get("AZURE_TENANT_ID").unwrap_or_default();
        if !valid_tenant(tenant) {
            return Err(TokenProblem::Missing {
                what: "AZURE_TENANT_ID: a tenant ID has only letters, digits, '-' and '.'".into(),
            });
        }
        Ok(Workload {
            token_file: PathBuf::from(file),
            client_id: env.get("AZURE_CLIENT_ID").unwrap_or_default().to_owned(),
            tenant: tenant.to_owned(),
            authority: authority(env.get("AZURE_AUTHORITY_HOST").unwrap_or(DEFAULT_AUTHORITY))?,
        })
    }

    /// The federated token (a JWT the kubelet rotates), trimmed as azure-identity does.
    fn assertion(&self) -> Result<String, TokenProblem> {
        oauth::read_token("AZURE_FEDERATED_TOKEN_FILE", &self.token_file)
    }

    /// The client-credentials grant with the federated token as the client assertion.
    fn draft(&self, assertion: &str) -> Draft {
        Draft {
            method: "POST",
            url: format!("{}/{}/oauth2/v2.0/token", self.authority, self.tenant),
            origin: "AZURE_AUTHORITY_HOST",
            headers: vec![("Content-Type", "application/x-www-form-urlencoded".into())],
            body: form(&[
                ("client_assertion", assertion),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_id", &self.client_id),
                ("grant_type", "client_credentials"),
                ("scope", SCOPE),
            ]),
        }
    }
}

/// The tenant goes into the URL's path: azure-identity allows exactly these characters.
fn valid_tenant(tenant: &str) -> bool {
    !tenant.is_empty()
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// `AZURE_AUTHORITY_HOST` as azure-identity normalizes it: https only (a bare host gets it),
/// no trailing slash.
fn authority(host: &str) -> Result<String, TokenProblem> {
    let host = host.trim_end_matches('/');
    if host.starts_with("https://") {
        Ok(host.to_owned())
    } else if host.contains("://") {
        Err(TokenProblem::Missing {
            what: "AZURE_AUTHORITY_HOST: must be an https:// URL".into(),
        })
    } else {
        Ok(format!("https://{host}"))
    }
}

impl AppService {
    fn from_env(env: &Env, endpoint: &str) -> Result<AppService, TokenProblem> {
        let Some(header) = env.get("IDENTITY_HEADER") else {
            return Err(TokenProblem::Missing {
                what: "IDENTITY_HEADER (IDENTITY_ENDPOINT alone is Azure Arc, which --iam azure \
                       does not support)"
                    .into(),
            });
        };
        Ok(AppService {
            endpoint: endpoint.to_owned(),
            header: Secret::new(header.to_owned()),
            client_id: env.get("AZURE_CLIENT_ID").map(str::to_owned),
        })
    }

    fn draft(&self) -> Draft {
        let query = query("2019-08-01", self.client_id.as_deref());
        let separator = if self.endpoint.contains('?') {
            '&'
        } else {
            '?'
        };
        Draft {
            method: "GET",
            url: format!("{}{separator}{query}", self.endpoint),
            origin: "IDENTITY_ENDPOINT",
            headers: vec![("X-IDENTITY-HEADER", self.header.expose().to_owned())],
            body: Vec::new(),
        }
    }
}

impl Imds {
    fn from_env(env: &Env) -> Imds {
        let (base, origin) = match env.get("AZURE_POD_IDENTITY_AUTHORITY_HOST") {
            Some(host) => (host, "AZURE_POD_IDENTITY_AUTHORITY_HOST"),
            None => (IMDS_AUTHORITY, "the IMDS address"),
        };
        Imds {
            base: base.trim_end_matches('/').to_owned(),
            origin,
            client_id: env.get("AZURE_CLIENT_ID").map(str::to_owned),
        }
    }

    fn draft(&self) -> Draft {
        let query = query("2018-02-01", self.client_id.as_deref());
        Draft {
            method: "GET",
            url: format!("{}{IMDS_PATH}?{query}", self.base),
            origin: self.origin,
            headers: vec![("Metadata", "true".into())],
            body: Vec::new(),
        }
    }
}

/// The managed-identity query: API version, resource, and a user-assigned identity's client ID.
fn query(api_version: &str, client_id: Option<&str>) -> String {
    let mut query = format!("api-version={api_version}&resource={}", escape(RESOURCE));
    if let Some(id) = client_id {
        query.push_str(&format!("&client_id={}", escape(id)));
    }
    query
}
