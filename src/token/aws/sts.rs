//! Web identity (EKS IRSA and other OIDC federations): the projected token file traded for
//! temporary credentials with STS `AssumeRoleWithWebIdentity`, an unsigned Query API call, and
//! the XML answer read by hand (five elements do not justify an XML crate).

use std::path::PathBuf;
use std::time::SystemTime;

use tokio::time::Instant;

use super::{status_problem, AwsCredentials};
use crate::classify::{TokenProblem, TokenSource};
use crate::conninfo::Secret;
use crate::token::http::{self, Plain, Request, Url};
use crate::token::oauth;
use crate::token::{Env, TokenError};
use crate::utc;

const SOURCE: TokenSource = TokenSource::AwsWebIdentity;

/// STS error codes that mean the request's time is off (a signed call's clock, or a web
/// identity token used outside its validity).
const CLOCK_CODES: &[&str] = &[
    "RequestExpired",
    "RequestTimeTooSkewed",
    "RequestInTheFuture",
    "SignatureDoesNotMatch",
    "InvalidSignatureException",
];
/// STS error codes that pass by themselves (botocore retries these).
const RETRY_CODES: &[&str] = &[
    "IDPCommunicationError",
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "ServiceUnavailable",
    "InternalFailure",
    "InternalError",
];

/// Where a request goes: the URL text and the setting it came from (for error messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Endpoint {
    pub text: String,
    pub variable: &'static str,
}

/// A configured web identity.
#[derive(Debug)]
pub(super) struct WebIdentity {
    pub token_file: PathBuf,
    pub role_arn: String,
    pub session_name: String,
    pub endpoint: Endpoint,
}

impl WebIdentity {
    /// Configured when `AWS_WEB_IDENTITY_TOKEN_FILE` is set (then `AWS_ROLE_ARN` must be).
    pub fn from_env(env: &Env, region: &str, now: SystemTime) -> Result<Option<Self>, TokenError> {
        let Some(token_file) = env.get("AWS_WEB_IDENTITY_TOKEN_FILE") else {
            return Ok(None);
        };
        let role_arn = env.get("AWS_ROLE_ARN").ok_or_else(|| {
            let what = "AWS_ROLE_ARN".to_string();
            TokenError::new(SOURCE, TokenProblem::Missing { what })
        })?;
        // botocore's default name, so CloudTrail shows the same as for the SDKs.
        let secs = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let session_name = env
            .get("AWS_ROLE_SESSION_NAME")
            .map_or_else(|| format!("botocore-session-{secs}"), str::to_string);
        Ok(Some(Self {
            token_file: PathBuf::from(token_file),
            role_arn: role_arn.to_string(),
            session_name,
            endpoint: endpoint(env, region),
        }))
    }

    /// Trades the token file's current token for credentials.
    pub async fn fetch(
        &self,
        client: &http::Client,
        deadline: Instant,
    ) -> Result<AwsCredentials, TokenError> {
        let fail = |problem| TokenError::new(SOURCE, problem);
        let token =
            oauth::read_token("AWS_WEB_IDENTITY_TOKEN_FILE", &self.token_file).map_err(fail)?;
        let url = Url::from_setting(&self.endpoint.text, self.endpoint.variable).map_err(fail)?;
        let request = self.request(url, &token);
        let response = http::send(client, &request, Plain::LocalOnly, deadline)
            .await
            .map_err(fail)?;
        parse_reply(response.status, &response.body).map_err(fail)
    }

    /// A form POST keeps the token out of the URL (and out of any proxy's log).
    fn request(&self, url: Url, token: &str) -> Request {
        let body = http::form(&[
            ("Action", "AssumeRoleWithWebIdentity"),
            ("Version", "2011-06-15"),
            ("RoleArn", &self.role_arn),
            ("RoleSessionName", &self.session_name),
            ("WebIdentityToken", token),
        ]);
        let content_type = "application/x-www-form-urlencoded; charset=utf-8".to_string();
        Request {
            method: "POST",
            url,
            headers: vec![
                ("Content-Type", content_type),
                ("Accept", "text/xml".to_string()),
            ],
            body,
        }
    }
}

/// `AWS_ENDPOINT_URL_STS`, else `AWS_ENDPOINT_URL`, else the region's STS endpoint.
fn endpoint(env: &Env, region: &str) -> Endpoint {
    for variable in ["AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL"] {
        if let Some(text) = env.get(variable) {
            let text = text.to_string();
            return Endpoint { text, variable };
        }
    }
    let domain = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    let text = format!("https://sts.{region}.{domain}");
    Endpoint {
        text,
        variable: "the STS endpoint",
    }
}

/// Credentials from a 200 answer, or what an error answer's `<Code>` means.
pub(super) fn parse_reply(status: u16, body: &[u8]) -> Result<AwsCredentials, TokenProblem> {
    let text = std::str::from_utf8(body).map_err(|_| TokenProblem::Malformed {
        what: "STS reply (not UTF-8)",
    })?;
    if status != 200 {
        return Err(error_problem(status, text));
    }
    let credentials = element(text, "Credentials")?.ok_or(TokenProblem::Malformed {
        what: "Credentials",
    })?;
    let field = |name: &'static str| -> Result<String, TokenProblem> {
        let raw = leaf(credentials, name)?.ok_or(TokenProblem::Malformed { what: name })?;
        unescape(raw).ok_or(TokenProblem::Malformed { what: name })
    };
    let expiration = field("Expiration")?;
    Ok(AwsCredentials {
        access_key_id: field("AccessKeyId")?,
        secret_access_key: Secret::new(field("SecretAccessKey")?),
        session_token: Some(Secret::new(field("SessionToken")?)),
        expires: Some(
            utc::parse_iso8601(&expiration)
                .ok_or(TokenProblem::Malformed { what: "Expiration" })?,
        ),
    })
}

/// An error answer as data: only its `<Code>` is read, and only known codes change the
/// meaning of the status (the message is never kept: it may quote the token).
fn error_problem(status: u16, text: &str) -> TokenProblem {
    let code = leaf(text, "Code").ok().flatten().unwrap_or("");
    if CLOCK_CODES.contains(&code) {
        TokenProblem::ClockSkew
    } else if status >= 500 {
        TokenProblem::Status { code: status }
    } else if RETRY_CODES.contains(&code) {
        TokenProblem::NotReadyYet { code: status }
    } else {
        status_problem(status)
    }
}

/// The content of the one `<name>` element in `xml` (`None`: absent; more than one or an
/// empty one is malformed, as a strict reader of STS's fixed schema should find).
fn element<'a>(xml: &'a str, name: &'static str) -> Result<Option<&'a str>, TokenProblem> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    let Some(start) = xml.find(&open).map(|at| at + open.len()) else {
        return Ok(None);
    };
    let malformed = TokenProblem::Malformed { what: name };
    let end = xml[start..].find(&close).ok_or(malformed.clone())? + start;
    let text = &xml[start..end];
    if text.is_empty() || xml[end..].contains(&open) {
        return Err(malformed);
    }
    Ok(Some(text))
}

/// A text-only element's content: markup inside one is malformed.
fn leaf<'a>(xml: &'a str, name: &'static str) -> Result<Option<&'a str>, TokenProblem> {
    match element(xml, name)? {
        Some(text) if text.contains('<') => Err(TokenProblem::Malformed { what: name }),
        found => Ok(found),
    }
}

/// XML's five predefined entities; any other `&` is malformed (`None`).
fn unescape(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let (ch, len) = [
            ("&amp;", '&'),
            ("&lt;", '<'),
            ("&gt;", '>'),
            ("&quot;", '"'),
            ("&apos;", '\''),
        ]
        .into_iter()
        .find(|(entity, _)| tail.starts_with(entity))
        .map(|(entity, ch)| (ch, entity.len()))?;
        out.push(ch);
        rest = &tail[len..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests;
