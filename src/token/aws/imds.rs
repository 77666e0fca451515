//! EC2 instance metadata, version 2 only (a session token first, as hardened instances demand):
//! the end of the chain. Unreachable here means "not on EC2, or not yet networked", which the
//! wait loop retries.

use tokio::time::Instant;

use super::container::parse_credentials;
use super::{status_problem, AwsCredentials};
use crate::classify::{TokenProblem, TokenSource};
use crate::token::http::{self, Plain, Request, Response, Url};
use crate::token::{Env, TokenError};

const SOURCE: TokenSource = TokenSource::AwsImds;
const ENDPOINT: &str = "AWS_EC2_METADATA_SERVICE_ENDPOINT";
const MODE: &str = "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE";
const ROLES: &str = "/latest/meta-data/iam/security-credentials/";
/// The SDKs' session length (the most IMDS allows).
const SESSION_TTL: &str = "21600";

/// The metadata service, by its base URL (no trailing slash).
#[derive(Debug)]
pub(super) struct Imds {
    pub base: String,
    /// The variable the base came from, or a description of the default.
    pub variable: &'static str,
}

impl Imds {
    /// The service, unless `AWS_EC2_METADATA_DISABLED=true`.
    pub fn from_env(env: &Env) -> Result<Option<Self>, TokenError> {
        let disabled = env.get("AWS_EC2_METADATA_DISABLED");
        if disabled.is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        if let Some(base) = env.get(ENDPOINT) {
            let base = base.trim_end_matches('/').to_string();
            return Ok(Some(Self {
                base,
                variable: ENDPOINT,
            }));
        }
        let base = match env.get(MODE) {
            None => "http://169.254.169.254",
            Some(mode) if mode.eq_ignore_ascii_case("ipv4") => "http://169.254.169.254",
            Some(mode) if mode.eq_ignore_ascii_case("ipv6") => "http://[fd00:ec2::254]",
            Some(_) => {
                let what = format!("{MODE} (IPv4 or IPv6)");
                return Err(TokenError::new(SOURCE, TokenProblem::Missing { what }));
            }
        };
        let variable = "the instance metadata endpoint";
        Ok(Some(Self {
            base: base.to_string(),
            variable,
        }))
    }

    /// Session token, role name, then the role's credentials.
    pub async fn fetch(
        &self,
        client: &http::Client,
        deadline: Instant,
    ) -> Result<AwsCredentials, TokenError> {
        let fail = |problem| TokenError::new(SOURCE, problem);
        let ttl = (
            "X-aws-ec2-metadata-token-ttl-seconds",
            SESSION_TTL.to_string(),
        );
        let session = self
            .call("PUT", "/latest/api/token", ttl, client, deadline)
            .await?;
        let session = text(&session.body, "IMDS session token").map_err(fail)?;
        let auth = || ("X-aws-ec2-metadata-token", session.clone());
        let roles = self.call("GET", ROLES, auth(), client, deadline).await?;
        let role = role_name(&roles.body).map_err(fail)?;
        let path = format!("{ROLES}{role}");
        let reply = self.call("GET", &path, auth(), client, deadline).await?;
        parse_credentials(&reply.body, true).map_err(fail)
    }

    /// One request with one header; anything but 200 is a problem (404 on the role list: no
    /// role attached to the instance).
    async fn call(
        &self,
        method: &'static str,
        path: &str,
        header: (&'static str, String),
        client: &http::Client,
        deadline: Instant,
    ) -> Result<Response, TokenError> {
        let fail = |problem| TokenError::new(SOURCE, problem);
        let url =
            Url::from_setting(&format!("{}{path}", self.base), self.variable).map_err(fail)?;
        let request = Request {
            method,
            url,
            headers: vec![header],
            body: Vec::new(),
        };
        let response = http::send(client, &request, Plain::LocalOnly, deadline)
            .await
            .map_err(fail)?;
        match response.status {
            200 => Ok(response),
            code => Err(fail(status_problem(code))),
        }
    }
}

/// A one-line text answer, trimmed.
fn text(body: &[u8], what: &'static str) -> Result<String, TokenProblem> {
    let text = std::str::from_utf8(body).map_err(|_| TokenProblem::Malformed { what })?;
    match text.trim() {
        "" => Err(TokenProblem::Malformed { what }),
        t if t.contains(['\r', '\n']) => Err(TokenProblem::Malformed { what }),
        t => Ok(t.to_string()),
    }
}

/// The first role of the list; IAM's role-name characters only, since it goes into a path.
fn role_name(body: &[u8]) -> Result<String, TokenProblem> {
    let what = "IMDS role name";
    let text = std::str::from_utf8(body).map_err(|_| TokenProblem::Malformed { what })?;
    let role = text.lines().next().unwrap_or("").trim();
    let allowed = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c);
    if role.is_empty() || role.len() > 64 || !role.chars().all(allowed) {
        return Err(TokenProblem::Malformed { what });
    }
    Ok(role.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_role_is_the_first_line_of_the_list() {
        for (body, want) in [
            ("app-role", "app-role"),
            ("app-role\n", "app-role"),
            ("first+=,.@_-\nsecond\n", "first+=,.@_-"),
            ("  spaced \r\n", "spaced"),
        ] {
            assert_eq!(role_name(body.as_bytes()), Ok(want.to_string()), "{body:?}");
        }
    }

    #[test]
    fn a_role_name_that_could_change_the_path_is_refused() {
        let long = "r".repeat(65);
        for body in [
            "",
            "\nrole",
            "../../latest/api/token",
            "role?x=1",
            "ro le",
            "rôle",
            long.as_str(),
        ] {
            let got = role_name(body.as_bytes());
            assert_eq!(
                got,
                Err(TokenProblem::Malformed {
                    what: "IMDS role name"
                }),
                "{body:?}"
            );
        }
        assert!(role_name(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn the_session_token_is_one_trimmed_line() {
        assert_eq!(
            text(b"AQAEAExample==\n", "t"),
            Ok("AQAEAExample==".to_string())
        );
        for body in [&b""[..], b" \n", b"a\nb", b"\xff"] {
            assert_eq!(text(body, "t"), Err(TokenProblem::Malformed { what: "t" }));
        }
    }
}
