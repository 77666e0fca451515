//! What the Azure and Google token sources share: a request drafted as plain data (so tests
//! check URLs, headers and bodies without the network), the bounded read of a token or key
//! file, the OAuth-style reply (`access_token` + `expires_in` / `expires_on`), and the status
//! codes that mean "not yet" rather than "no".
//!
//! No function here puts a reply's text into an error: a malformed answer can hold a token.

use std::io::Read;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde_json::Value;
use tokio::time::Instant;

use super::http::{self, Client, Plain, Request, Response, Url};
use super::Minted;
use crate::classify::TokenProblem;
use crate::conninfo::Secret;

/// The most a token or key file may hold; both are a few KiB.
pub const MAX_FILE: u64 = 64 * 1024;

/// A request before its URL is parsed: everything [`http::send`] needs, as plain values.
pub struct Draft {
    pub method: &'static str,
    pub url: String,
    /// The variable the URL came from, named if it does not parse.
    pub origin: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for Draft {
    /// Method and URL only: headers and bodies carry client assertions and identity headers.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Draft({} {})", self.method, self.url)
    }
}

impl Draft {
    /// The request [`http::send`] takes; a URL that does not parse names its variable.
    pub fn request(self) -> Result<Request, TokenProblem> {
        let url = Url::from_setting(&self.url, self.origin)?;
        Ok(Request {
            method: self.method,
            url,
            headers: self.headers,
            body: self.body,
        })
    }
}

/// Sends `draft` and checks the status: codes in `not_ready` mean the endpoint will answer
/// later; 5xx is retried by the policy as any `Status` of 500 and up.
pub async fn exchange(
    client: &Client,
    draft: Draft,
    plain: Plain,
    deadline: Instant,
    not_ready: &[u16],
) -> Result<Response, TokenProblem> {
    let response = http::send(client, &draft.request()?, plain, deadline).await?;
    check_status(response.status, not_ready)?;
    Ok(response)
}

/// Success, "not ready yet", or the status as it came.
pub fn check_status(code: u16, not_ready: &[u16]) -> Result<(), TokenProblem> {
    match code {
        200..=299 => Ok(()),
        _ if not_ready.contains(&code) => Err(TokenProblem::NotReadyYet { code }),
        _ => Err(TokenProblem::Status { code }),
    }
}

/// A token file (a federated or web identity JWT, an authorization token the agent rotates):
/// read with [`read_small`], as text, surrounding whitespace removed (no part of a token).
pub fn read_token(variable: &str, path: &Path) -> Result<String, TokenProblem> {
    let bytes = read_small(variable, path)?;
    let unusable = |why: &str| TokenProblem::Missing {
        what: format!("{variable} ({path:?}): {why}"),
    };
    let text = String::from_utf8(bytes).map_err(|_| unusable("not text"))?;
    match text.trim() {
        "" => Err(unusable("empty")),
        token => Ok(token.to_owned()),
    }
}

/// Reads a token or key file of at most [`MAX_FILE`] bytes; errors name `variable` and the
/// path, never the content.
pub fn read_small(variable: &str, path: &Path) -> Result<Vec<u8>, TokenProblem> {
    let unusable = |why: String| TokenProblem::Missing {
        what: format!("{variable} ({path:?}): {why}"),
    };
    let file =
        std::fs::File::open(path).map_err(|e| unusable(format!("cannot open: {}", e.kind())))?;
    let mut content = Vec::new();
    file.take(MAX_FILE + 1)
        .read_to_end(&mut content)
        .map_err(|e| unusable(format!("cannot read: {}", e.kind())))?;
    if content.len() as u64 > MAX_FILE {
        return Err(unusable(format!("larger than {} KiB", MAX_FILE / 1024)));
    }
    Ok(content)
}

/// The token and its expiry from an OAuth-style JSON reply. `expires_on` (epoch seconds, the
/// Azure managed-identity endpoints) wins over `expires_in` (seconds from `now`, when the
/// request was sent); either may be a number or a string of digits, as the endpoints differ.
pub fn parse_token(body: &[u8], now: SystemTime) -> Result<Minted, TokenProblem> {
    let malformed = |what| TokenProblem::Malformed { what };
    let reply: Value = serde_json::from_slice(body).map_err(|_| malformed("JSON token reply"))?;
    let token = match reply.get("access_token") {
        Some(Value::String(token)) if usable_password(token) => token.clone(),
        _ => return Err(malformed("access_token")),
    };
    let expires = if let Some(on) = reply.get("expires_on") {
        let secs = seconds(on).ok_or(malformed("expires_on"))?;
        SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(secs))
    } else {
        let secs = reply
            .get("expires_in")
            .and_then(seconds)
            .ok_or(malformed("expires_in"))?;
        now.checked_add(Duration::from_secs(secs))
    };
    Ok(Minted {
        secret: Secret::new(token),
        expires: Some(expires.ok_or(malformed("expiry"))?),
    })
}

/// A PostgreSQL password cannot hold NUL, and an empty one is no token.
fn usable_password(token: &str) -> bool {
    !token.is_empty() && !token.contains('\0')
}

/// Whole seconds as a JSON number or a string of digits (IMDS sends `"3599"`), below 2^40 (some
/// 35,000 years) so a garbled value cannot overflow the clock.
fn seconds(value: &Value) -> Option<u64> {
    const LIMIT: u64 = 1 << 40;
    let secs = match value {
        Value::Number(n) => n.as_u64()?,
        Value::String(s)
            if !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()) =>
        {
            s.parse().ok()?
        }
        _ => return None,
    };
    (secs < LIMIT).then_some(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Duration = Duration::from_secs(1_700_000_000);

    fn parse(body: &str) -> Result<Minted, TokenProblem> {
        parse_token(body.as_bytes(), SystemTime::UNIX_EPOCH + NOW)
    }

    #[test]
    fn reads_expiry_as_number_or_string_relative_or_absolute() {
        let after = |secs| Some(SystemTime::UNIX_EPOCH + NOW + Duration::from_secs(secs));
        let at = |secs| Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs));
        let cases = [
            (r#"{"access_token":"t","expires_in":3599}"#, after(3599)),
            (r#"{"access_token":"t","expires_in":"3599"}"#, after(3599)),
            (
                r#"{"access_token":"t","expires_on":"1700003600"}"#,
                at(1_700_003_600),
            ),
            (
                r#"{"access_token":"t","expires_on":1700003600}"#,
                at(1_700_003_600),
            ),
            // IMDS sends both; the absolute one does not depend on when the request left.
            (
                r#"{"access_token":"t","expires_in":"10","expires_on":"1700003600"}"#,
                at(1_700_003_600),
            ),
        ];
        for (body, expires) in cases {
            let minted = parse(body).expect(body);
            assert_eq!(minted.secret.expose(), "t", "{body}");
            assert_eq!(minted.expires, expires, "{body}");
        }
    }

    #[test]
    fn names_the_field_that_is_missing_or_garbled() {
        let huge = format!(
            r#"{{"access_token":"t","expires_in":"{}"}}"#,
            "9".repeat(5000)
        );
        let cases = [
            ("", "JSON token reply"),
            ("<html>502</html>", "JSON token reply"),
            ("[]", "access_token"),
            (r#"{"expires_in":1}"#, "access_token"),
            (r#"{"access_token":"","expires_in":1}"#, "access_token"),
            (
                r#"{"access_token":"a\u0000b","expires_in":1}"#,
                "access_token",
            ),
            (r#"{"access_token":7,"expires_in":1}"#, "access_token"),
            (r#"{"access_token":"t"}"#, "expires_in"),
            (r#"{"access_token":"t","expires_in":-5}"#, "expires_in"),
            (r#"{"access_token":"t","expires_in":3.5}"#, "expires_in"),
            (r#"{"access_token":"t","expires_in":" 60"}"#, "expires_in"),
            (r#"{"access_token":"t","expires_in":"1e3"}"#, "expires_in"),
            (
                r#"{"access_token":"t","expires_in":18446744073709551615}"#,
                "expires_in",
            ),
            (&huge, "expires_in"),
            (
                r#"{"access_token":"t","expires_on":"06/20/2019 02:57:58 +00:00"}"#,
                "expires_on",
            ),
        ];
        for (body, what) in cases {
            let problem = parse(body).expect_err(body);
            assert_eq!(problem, TokenProblem::Malformed { what }, "{body}");
        }
    }

    #[test]
    fn malformed_replies_never_echo_the_token() {
        let problem = parse(r#"{"access_token":"SECRET-FRAGMENT"}"#).unwrap_err();
        assert!(!format!("{problem:?}").contains("SECRET"));
    }

    #[test]
    fn sorts_statuses_into_success_not_yet_and_refusal() {
        let not_ready = [404, 410, 429];
        assert_eq!(check_status(200, &not_ready), Ok(()));
        assert_eq!(
            check_status(410, &not_ready),
            Err(TokenProblem::NotReadyYet { code: 410 })
        );
        assert_eq!(
            check_status(503, &not_ready),
            Err(TokenProblem::Status { code: 503 })
        );
        assert_eq!(
            check_status(400, &not_ready),
            Err(TokenProblem::Status { code: 400 })
        );
        assert_eq!(
            check_status(404, &[]),
            Err(TokenProblem::Status { code: 404 })
        );
    }

    #[test]
    fn reads_small_files_and_refuses_big_or_missing_ones() {
        let dir = std::env::temp_dir().join(format!("pgwait-oauth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let small = dir.join("small");
        std::fs::write(&small, b"token").unwrap();
        assert_eq!(read_small("VAR", &small).unwrap(), b"token");
        let big = dir.join("big");
        std::fs::write(&big, vec![b'x'; MAX_FILE as usize + 1]).unwrap();
        let missing = dir.join("missing");
        for path in [big, missing] {
            match read_small("VAR", &path) {
                Err(TokenProblem::Missing { what }) => assert!(what.starts_with("VAR ("), "{what}"),
                other => panic!("{other:?}"),
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
