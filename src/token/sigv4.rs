//! AWS Signature Version 4 query signing, as much of it as an RDS IAM token needs: the token is
//! a presigned `GET /?Action=connect&DBUser=…` for the `rds-db` service with the scheme cut off,
//! byte for byte what botocore's `generate_db_auth_token` returns (`tests/cloud/rds_token.py`
//! is the reference the tests were taken from).

use std::time::SystemTime;

use ring::{digest, hmac};

use super::aws::AwsCredentials;
use super::http::escape;
use crate::utc::amz_date;

/// The service name RDS IAM tokens are signed for.
const SERVICE: &str = "rds-db";
/// A token is accepted for 15 minutes after its `X-Amz-Date` (RDS's fixed maximum).
pub const TOKEN_LIFETIME_SECS: u64 = 900;

/// The IAM authentication token for `user` on `host:port` in `region`, signed with `creds` at
/// `now`: `HOST:PORT/?Action=connect&DBUser=…&X-Amz-…&X-Amz-Signature=…`.
pub fn rds_token(
    host: &str,
    port: u16,
    user: &str,
    region: &str,
    creds: &AwsCredentials,
    now: SystemTime,
) -> String {
    let date = amz_date(now);
    let scope = format!("{}/{region}/{SERVICE}/aws4_request", &date[..8]);
    let query = query(user, creds, &date, &scope);
    let canonical = canonical_request(&canonical_query(&query), &canonical_host(host, port));
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{date}\n{scope}\n{}",
        hex(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref())
    );
    let key = signing_key(creds.secret_access_key.expose(), &date[..8], region);
    let signature = hex(hmac::sign(&key, to_sign.as_bytes()).as_ref());
    let joined: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!(
        "{}:{port}/?{}&X-Amz-Signature={signature}",
        bracketed(host),
        joined.join("&")
    )
}

/// The query's pairs, values escaped, in botocore's order: the operation's parameters, then
/// the authentication parameters (the order of the token's text; signing sorts them).
fn query(
    user: &str,
    creds: &AwsCredentials,
    date: &str,
    scope: &str,
) -> Vec<(&'static str, String)> {
    let mut pairs = vec![
        ("Action", "connect".to_string()),
        ("DBUser", escape(user)),
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256".to_string()),
        (
            "X-Amz-Credential",
            escape(&format!("{}/{scope}", creds.access_key_id)),
        ),
        ("X-Amz-Date", date.to_string()),
        ("X-Amz-Expires", TOKEN_LIFETIME_SECS.to_string()),
        ("X-Amz-SignedHeaders", "host".to_string()),
    ];
    if let Some(token) = &creds.session_token {
        pairs.push(("X-Amz-Security-Token", escape(token.expose())));
    }
    pairs
}

/// The pairs sorted by (escaped) name, as SigV4's canonical query string wants.
fn canonical_query(pairs: &[(&'static str, String)]) -> String {
    let mut sorted: Vec<&(&str, String)> = pairs.iter().collect();
    sorted.sort();
    let joined: Vec<String> = sorted.iter().map(|(k, v)| format!("{k}={v}")).collect();
    joined.join("&")
}

/// The SHA-256 of the empty body: botocore signs the token's payload hash, not
/// `UNSIGNED-PAYLOAD`, since the operation's parameters moved from the body to the query.
const EMPTY_BODY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The canonical request of a presigned GET that signs only `host`.
fn canonical_request(query: &str, host: &str) -> String {
    format!("GET\n/\n{query}\nhost:{host}\n\nhost\n{EMPTY_BODY_SHA256}")
}

/// The `Host` header botocore signs: the host lower-cased (IPv6 in brackets), with the port
/// unless it is https's 443.
fn canonical_host(host: &str, port: u16) -> String {
    let host = bracketed(host).to_ascii_lowercase();
    if port == 443 {
        host
    } else {
        format!("{host}:{port}")
    }
}

/// An IPv6 literal in brackets, as a URL's authority must have it (botocore is given the
/// bracketed form; a bare one it cannot parse at all).
fn bracketed(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// SigV4's derived key: the secret chained through date, region, service and `aws4_request`.
fn signing_key(secret: &str, day: &str, region: &str) -> hmac::Key {
    let mut key = hmac::Key::new(hmac::HMAC_SHA256, format!("AWS4{secret}").as_bytes());
    for part in [day, region, SERVICE, "aws4_request"] {
        let tag = hmac::sign(&key, part.as_bytes());
        key = hmac::Key::new(hmac::HMAC_SHA256, tag.as_ref());
    }
    key
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::conninfo::Secret;

    const SESSION: &str = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJIMEYCIQD+abc=";

    fn creds(session: Option<&str>) -> AwsCredentials {
        AwsCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into()),
            session_token: session.map(|s| Secret::new(s.into())),
            expires: None,
        }
    }

    /// Host, port, user, region, epoch seconds, session token, and botocore's token.
    type Vector = (
        &'static str,
        u16,
        &'static str,
        &'static str,
        u64,
        Option<&'static str>,
        &'static str,
    );

    /// From `tests/cloud/rds_token.py` (botocore 1.x) with the credentials in `creds`.
    const VECTORS: &[Vector] = &[
        (
            "db.example.com", 5432, "alice", "us-east-1", 1_700_000_000, None,
            "db.example.com:5432/?Action=connect&DBUser=alice&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20231114%2Fus-east-1%2Frds-db%2Faws4_request&X-Amz-Date=20231114T221320Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=5381193c41566a5cf8de8b5674c30611ec85c04b41dde2c3c36c68dfdb4f8f25",
        ),
        (
            "mydb.cluster-abc.eu-west-1.rds.amazonaws.com", 443, "Bob Smith/ü+=&?", "eu-west-1", 951_782_400, None,
            "mydb.cluster-abc.eu-west-1.rds.amazonaws.com:443/?Action=connect&DBUser=Bob%20Smith%2F%C3%BC%2B%3D%26%3F&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20000229%2Feu-west-1%2Frds-db%2Faws4_request&X-Amz-Date=20000229T000000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=659fef00305f675f941f3464d6bc5875eaa8b077c6dcaee6a8d33ca8a630fd9f",
        ),
        (
            "10.0.0.5", 6543, "app_user", "cn-north-1", 4_102_444_799, Some(SESSION),
            "10.0.0.5:6543/?Action=connect&DBUser=app_user&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20991231%2Fcn-north-1%2Frds-db%2Faws4_request&X-Amz-Date=20991231T235959Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Security-Token=IQoJb3JpZ2luX2VjEJr%2F%2F%2F%2F%2F%2F%2F%2F%2F%2FwEaCXVzLWVhc3QtMSJIMEYCIQD%2Babc%3D&X-Amz-Signature=e18935b2c5ce0734e56ab61ad64b32ac8809a7e549787e07059d279c1870f6e5",
        ),
        (
            "DB.Example.COM", 443, "alice", "us-east-1", 1_709_251_199, None,
            "DB.Example.COM:443/?Action=connect&DBUser=alice&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20240229%2Fus-east-1%2Frds-db%2Faws4_request&X-Amz-Date=20240229T235959Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=9aa97eef54e4da7d6cecc2dc9bc2ce13128cd474b88461823d3eb2824f2cae4f",
        ),
        (
            "[fd00::1]", 5432, "user@example.com", "ap-southeast-2", 1_234_567_890, None,
            "[fd00::1]:5432/?Action=connect&DBUser=user%40example.com&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20090213%2Fap-southeast-2%2Frds-db%2Faws4_request&X-Amz-Date=20090213T233130Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=06ecfebf6cf10b7d2559a790b055e9d9d094aa6f2bf55c5a69435925dd821fe3",
        ),
        (
            "[FD00::1]", 443, "x", "us-east-1", 1_234_567_890, None,
            "[FD00::1]:443/?Action=connect&DBUser=x&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20090213%2Fus-east-1%2Frds-db%2Faws4_request&X-Amz-Date=20090213T233130Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=0c592ddd0c994f74ef02cb02835ed3b35c2fc9a92aa585f6140ab361770b7b1f",
        ),
        (
            "localhost", 5432, "a~b-c_d.e", "us-gov-west-1", 1_582_934_400, None,
            "localhost:5432/?Action=connect&DBUser=a~b-c_d.e&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20200229%2Fus-gov-west-1%2Frds-db%2Faws4_request&X-Amz-Date=20200229T000000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=d2eeba4f5dea20156383ea00c0b9ff27c25a3094430558fdb2ce9eb9d81cca51",
        ),
    ];

    #[test]
    fn tokens_match_botocore_byte_for_byte() {
        for &(host, port, user, region, secs, session, want) in VECTORS {
            let now = UNIX_EPOCH + Duration::from_secs(secs);
            let got = rds_token(host, port, user, region, &creds(session), now);
            assert_eq!(got, want, "{host}:{port} {user}");
        }
    }

    #[test]
    fn the_payload_hash_is_that_of_an_empty_body() {
        let empty = hex(digest::digest(&digest::SHA256, b"").as_ref());
        assert_eq!(empty, EMPTY_BODY_SHA256);
    }

    #[test]
    fn a_bare_ipv6_host_is_signed_as_botocore_signs_its_bracketed_form() {
        let now = UNIX_EPOCH + Duration::from_secs(1_234_567_890);
        let bare = rds_token(
            "fd00::1",
            5432,
            "user@example.com",
            "ap-southeast-2",
            &creds(None),
            now,
        );
        assert_eq!(bare, VECTORS[4].6);
    }
}
