//! Container credentials (ECS task roles, EKS Pod Identity): a GET to the agent's URI, with the
//! agent's authorization header when one is configured, answered in JSON. The JSON reader is
//! shared with instance metadata, whose answers have the same shape.

use std::path::PathBuf;

use serde_json::Value;
use tokio::time::Instant;

use super::{status_problem, AwsCredentials};
use crate::classify::{TokenProblem, TokenSource};
use crate::conninfo::Secret;
use crate::token::http::{self, Plain, Request, Url, MAX_RESPONSE};
use crate::token::oauth;
use crate::token::{Env, TokenError};
use crate::utc;

const SOURCE: TokenSource = TokenSource::AwsContainer;
const RELATIVE: &str = "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI";
const FULL: &str = "AWS_CONTAINER_CREDENTIALS_FULL_URI";
const TOKEN_FILE: &str = "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE";
const TOKEN: &str = "AWS_CONTAINER_AUTHORIZATION_TOKEN";
/// The ECS agent's address, which relative URIs are on.
const ECS_AGENT: &str = "http://169.254.170.2";

/// Where the `Authorization` header's value comes from.
#[derive(Debug)]
pub(super) enum Authorization {
    /// Read at each fetch: EKS Pod Identity rotates it.
    File(PathBuf),
    Value(Secret),
}

/// A configured container credential endpoint.
#[derive(Debug)]
pub(super) struct Container {
    pub url: String,
    /// The variable the URL came from.
    pub variable: &'static str,
    pub authorization: Option<Authorization>,
}

impl Container {
    /// Configured when either URI variable is set; the relative one wins, as in the SDKs.
    pub fn from_env(env: &Env) -> Result<Option<Self>, TokenError> {
        let (url, variable) = match (env.get(RELATIVE), env.get(FULL)) {
            (Some(relative), _) => (format!("{ECS_AGENT}{relative}"), RELATIVE),
            (None, Some(full)) => (full.to_string(), FULL),
            (None, None) => return Ok(None),
        };
        let authorization = match (env.get(TOKEN_FILE), env.get(TOKEN)) {
            (Some(file), _) => Some(Authorization::File(PathBuf::from(file))),
            (None, Some(value)) => Some(Authorization::Value(Secret::new(header_value(
                value, TOKEN,
            )?))),
            (None, None) => None,
        };
        Ok(Some(Self {
            url,
            variable,
            authorization,
        }))
    }

    /// GETs the credentials.
    pub async fn fetch(
        &self,
        client: &http::Client,
        deadline: Instant,
    ) -> Result<AwsCredentials, TokenError> {
        let fail = |problem| TokenError::new(SOURCE, problem);
        let url = Url::from_setting(&self.url, self.variable).map_err(fail)?;
        let headers = match &self.authorization {
            Some(auth) => vec![("Authorization", self.authorization_value(auth)?)],
            None => Vec::new(),
        };
        let request = Request {
            method: "GET",
            url,
            headers,
            body: Vec::new(),
        };
        let response = http::send(client, &request, Plain::AwsContainer, deadline)
            .await
            .map_err(fail)?;
        if response.status != 200 {
            return Err(fail(status_problem(response.status)));
        }
        parse_credentials(&response.body, false).map_err(fail)
    }

    fn authorization_value(&self, auth: &Authorization) -> Result<String, TokenError> {
        let value = match auth {
            Authorization::File(path) => oauth::read_token(TOKEN_FILE, path),
            Authorization::Value(value) => Ok(value.expose().to_string()),
        };
        value
            .and_then(|v| header_value(&v, TOKEN_FILE).map_err(|e| e.problem))
            .map_err(|problem| TokenError::new(SOURCE, problem))
    }
}

/// A header value must be one line: a CR or LF would let the value add headers of its own.
fn header_value(value: &str, variable: &str) -> Result<String, TokenError> {
    if value.contains(['\r', '\n']) {
        let what = format!("{variable} (one line, no CR or LF)");
        return Err(TokenError::new(SOURCE, TokenProblem::Missing { what }));
    }
    Ok(value.to_string())
}

/// Credentials from a container or instance-metadata JSON answer: `AccessKeyId`,
/// `SecretAccessKey`, `Token` and `Expiration` all required, as botocore requires them; with
/// `check_code`, also `"Code": "Success"` (instance metadata's own status).
pub(super) fn parse_credentials(
    body: &[u8],
    check_code: bool,
) -> Result<AwsCredentials, TokenProblem> {
    if body.len() > MAX_RESPONSE {
        return Err(TokenProblem::Malformed {
            what: "reply (too large)",
        });
    }
    let json: Value = serde_json::from_slice(body).map_err(|_| TokenProblem::Malformed {
        what: "reply (not JSON)",
    })?;
    let field = |name: &'static str| -> Result<String, TokenProblem> {
        match json.get(name) {
            Some(Value::String(text)) if !text.is_empty() => Ok(text.clone()),
            _ => Err(TokenProblem::Malformed { what: name }),
        }
    };
    if check_code && field("Code")? != "Success" {
        return Err(TokenProblem::Malformed { what: "Code" });
    }
    let expires = utc::parse_iso8601(&field("Expiration")?)
        .ok_or(TokenProblem::Malformed { what: "Expiration" })?;
    Ok(AwsCredentials {
        access_key_id: field("AccessKeyId")?,
        secret_access_key: Secret::new(field("SecretAccessKey")?),
        session_token: Some(Secret::new(field("Token")?)),
        expires: Some(expires),
    })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    const GOOD: &str = r#"{
        "RoleArn": "arn:aws:iam::123456789012:role/task",
        "AccessKeyId": "ASIAEXAMPLE",
        "SecretAccessKey": "wJalrXUtnFEMI/K7MDENG",
        "Token": "IQoJb3JpZ2luX2Vj",
        "Expiration": "2017-06-23T20:37:05Z"
    }"#;

    fn malformed(what: &'static str) -> Result<(), TokenProblem> {
        Err(TokenProblem::Malformed { what })
    }

    #[test]
    fn reads_a_container_agent_answer() {
        let creds = parse_credentials(GOOD.as_bytes(), false).expect("credentials");
        assert_eq!(creds.access_key_id, "ASIAEXAMPLE");
        assert_eq!(creds.secret_access_key.expose(), "wJalrXUtnFEMI/K7MDENG");
        assert_eq!(
            creds.session_token.as_ref().map(Secret::expose),
            Some("IQoJb3JpZ2luX2Vj")
        );
        assert_eq!(
            creds.expires,
            Some(UNIX_EPOCH + Duration::from_secs(1_498_250_225))
        );
    }

    #[test]
    fn instance_metadata_answers_must_say_success() {
        let success = GOOD.replacen('{', r#"{"Code": "Success", "Type": "AWS-HMAC","#, 1);
        assert!(parse_credentials(success.as_bytes(), true).is_ok());
        let failed = GOOD.replacen('{', r#"{"Code": "AssumeRoleUnauthorizedAccess","#, 1);
        assert_eq!(
            parse_credentials(failed.as_bytes(), true).map(|_| ()),
            malformed("Code")
        );
        assert_eq!(
            parse_credentials(GOOD.as_bytes(), true).map(|_| ()),
            malformed("Code")
        );
    }

    #[test]
    fn refuses_answers_missing_a_field_or_not_json() {
        let cases: &[(String, &'static str)] = &[
            (GOOD.replace("\"Token\"", "\"Tok\""), "Token"),
            (
                GOOD.replace("\"AccessKeyId\": \"ASIAEXAMPLE\"", "\"AccessKeyId\": 7"),
                "AccessKeyId",
            ),
            (GOOD.replace("wJalrXUtnFEMI/K7MDENG", ""), "SecretAccessKey"),
            (
                GOOD.replace("2017-06-23T20:37:05Z", "2017-06-23"),
                "Expiration",
            ),
            (GOOD.replace("\"Expiration\"", "\"Expires\""), "Expiration"),
            ("[]".to_string(), "Expiration"),
            ("".to_string(), "reply (not JSON)"),
            ("<html>nope</html>".to_string(), "reply (not JSON)"),
            (GOOD.replace('}', ""), "reply (not JSON)"),
        ];
        for (body, what) in cases {
            let got = parse_credentials(body.as_bytes(), false).map(|_| ());
            assert_eq!(got, malformed(what), "{body}");
        }
    }

    #[test]
    fn refuses_huge_answers_before_parsing() {
        let huge = GOOD.replace("IQoJb3JpZ2luX2Vj", &"x".repeat(MAX_RESPONSE));
        assert_eq!(
            parse_credentials(huge.as_bytes(), false).map(|_| ()),
            malformed("reply (too large)")
        );
        let deep = "[".repeat(10_000);
        assert_eq!(
            parse_credentials(deep.as_bytes(), false).map(|_| ()),
            malformed("reply (not JSON)")
        );
    }
}
