use std::time::{Duration, SystemTime};

use ring::signature::{UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
use serde_json::{json, Value};

use super::jwt::{base64url, LIFETIME_SECS};
use super::key::{self, Credentials, TOKEN_URI};
use super::*;

/// A throwaway key made for these tests (`openssl genpkey -algorithm RSA`); it guards nothing.
const TEST_KEY: &str = include_str!("../../../tests/cloud/throwaway-rsa2048.pem");
const NOW: u64 = 1_700_000_000;

/// Environment variables as a test writes them.
type Pairs<'a> = &'a [(&'a str, &'a str)];

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(NOW)
}

fn service_account(extra: Value) -> Vec<u8> {
    let mut file = json!({
        "type": "service_account",
        "project_id": "p",
        "private_key_id": "0123abcd",
        "private_key": TEST_KEY,
        "client_email": "gate@p.iam.gserviceaccount.com",
        "client_id": "1234",
        "token_uri": "https://oauth2.googleapis.com/token",
    });
    for (k, v) in extra.as_object().unwrap() {
        match v {
            Value::Null => file.as_object_mut().unwrap().remove(k),
            _ => file.as_object_mut().unwrap().insert(k.clone(), v.clone()),
        };
    }
    file.to_string().into_bytes()
}

fn problem(content: &[u8]) -> String {
    match key::parse(content) {
        Err(TokenProblem::Missing { what }) => what,
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("parsed"),
    }
}

/// Decodes unpadded base64url, for checking what the encoder wrote.
fn unbase64url(text: &str) -> Vec<u8> {
    let sextet = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' => 62,
        b'_' => 63,
        _ => panic!("not base64url: {c}"),
    };
    let bits: Vec<u8> = text.bytes().map(sextet).collect();
    let mut out = Vec::new();
    for chunk in bits.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &s)| n | u32::from(s) << (18 - 6 * i));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

#[test]
fn selects_the_key_file_before_the_metadata_server() {
    let cases: &[(Pairs, Source)] = &[
        (
            &[
                ("GOOGLE_APPLICATION_CREDENTIALS", "/k.json"),
                ("GCE_METADATA_HOST", "x"),
            ],
            Source::KeyFile("/k.json".into()),
        ),
        (
            &[],
            Source::Metadata {
                host: "metadata.google.internal".into(),
            },
        ),
        (
            &[("GOOGLE_APPLICATION_CREDENTIALS", "")],
            Source::Metadata {
                host: "metadata.google.internal".into(),
            },
        ),
        (
            &[("GCE_METADATA_HOST", "127.0.0.1:8080")],
            Source::Metadata {
                host: "127.0.0.1:8080".into(),
            },
        ),
        (
            &[("GCE_METADATA_HOST", "[::1]:80")],
            Source::Metadata {
                host: "[::1]:80".into(),
            },
        ),
    ];
    for (pairs, expected) in cases {
        assert_eq!(
            Source::select(&Env::of(pairs)).unwrap(),
            *expected,
            "{pairs:?}"
        );
    }
}

#[test]
fn refuses_a_metadata_host_that_would_change_the_url() {
    for host in ["evil.com/x?", "a@b", "h#", "h h"] {
        let error = Source::select(&Env::of(&[("GCE_METADATA_HOST", host)])).unwrap_err();
        assert_eq!(error.source, TokenSource::GcpMetadata);
        assert!(
            matches!(error.problem, TokenProblem::Missing { ref what } if what.starts_with("GCE_METADATA_HOST"))
        );
    }
}

#[test]
fn builds_the_metadata_request() {
    let draft = metadata_draft("metadata.google.internal");
    assert_eq!(draft.method, "GET");
    assert_eq!(
        draft.url,
        "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token\
         ?scopes=https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fsqlservice.login"
    );
    assert_eq!(draft.headers, [("Metadata-Flavor", "Google".to_string())]);
    assert!(draft.body.is_empty());
}

#[test]
fn believes_only_a_reply_that_says_it_is_google_metadata() {
    let headers = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(
        check_flavor(&headers(&[
            ("content-type", "x"),
            ("metadata-flavor", "Google")
        ])),
        Ok(())
    );
    for bad in [
        &[][..],
        &[("metadata-flavor", "google-ish")],
        &[("server", "Google")],
    ] {
        assert_eq!(
            check_flavor(&headers(bad)),
            Err(TokenProblem::Malformed {
                what: "Metadata-Flavor header"
            }),
            "{bad:?}"
        );
    }
}

#[test]
fn metadata_server_not_ready_at_pod_start_is_retryable() {
    assert_eq!(
        oauth::check_status(404, METADATA_NOT_READY),
        Err(TokenProblem::NotReadyYet { code: 404 })
    );
    assert_eq!(
        oauth::check_status(503, METADATA_NOT_READY),
        Err(TokenProblem::Status { code: 503 })
    );
    assert_eq!(
        oauth::check_status(403, METADATA_NOT_READY),
        Err(TokenProblem::Status { code: 403 })
    );
}

#[test]
fn encodes_rfc_4648_test_vectors_unpadded_and_url_safe() {
    let cases: &[(&[u8], &str)] = &[
        (b"", ""),
        (b"f", "Zg"),
        (b"fo", "Zm8"),
        (b"foo", "Zm9v"),
        (b"foob", "Zm9vYg"),
        (b"fooba", "Zm9vYmE"),
        (b"foobar", "Zm9vYmFy"),
        // Where standard base64 writes `+` and `/`.
        (&[0xfb, 0xff], "-_8"),
        (&[0xfb, 0xef, 0xbe], "----"),
        (&[0xff, 0xff, 0xff], "____"),
    ];
    for (bytes, text) in cases {
        assert_eq!(base64url(bytes), *text, "{bytes:?}");
        assert_eq!(unbase64url(text), *bytes, "{text}");
    }
}

fn signed_assertion(file: &[u8]) -> (String, String) {
    let credentials = key::parse(file).unwrap_or_else(|p| panic!("{p:?}"));
    let draft = credentials.draft(now()).unwrap();
    assert_eq!(draft.method, "POST");
    let body = String::from_utf8(draft.body).unwrap();
    let assertion = body
        .strip_prefix("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=")
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned();
    let Credentials::ServiceAccount(account) = credentials else {
        panic!("not a service account")
    };
    // The key's public half, DER RSAPublicKey, as ring verifies with.
    let public = ring::signature::KeyPair::public_key(&account.key)
        .as_ref()
        .to_vec();
    let public_hex = public.iter().map(|b| format!("{b:02x}")).collect();
    (assertion, public_hex)
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn signs_a_service_account_assertion_google_accepts() {
    let (assertion, public) = signed_assertion(&service_account(json!({})));
    let parts: Vec<&str> = assertion.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: Value = serde_json::from_slice(&unbase64url(parts[0])).unwrap();
    assert_eq!(
        header,
        json!({"alg": "RS256", "typ": "JWT", "kid": "0123abcd"})
    );
    let claims: Value = serde_json::from_slice(&unbase64url(parts[1])).unwrap();
    assert_eq!(
        claims,
        json!({
            "iss": "gate@p.iam.gserviceaccount.com",
            "scope": "https://www.googleapis.com/auth/sqlservice.login",
            "aud": "https://oauth2.googleapis.com/token",
            "iat": NOW,
            "exp": NOW + LIFETIME_SECS,
        })
    );
    let signed = format!("{}.{}", parts[0], parts[1]);
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, unhex(&public))
        .verify(signed.as_bytes(), &unbase64url(parts[2]))
        .expect("signature verifies with the key's public half");
    let mut forged = claims.clone();
    forged["iss"] = "evil@p.iam.gserviceaccount.com".into();
    let tampered = format!("{}.{}", parts[0], base64url(forged.to_string().as_bytes()));
    assert!(
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, unhex(&public))
            .verify(tampered.as_bytes(), &unbase64url(parts[2]))
            .is_err()
    );
}

#[test]
fn posts_to_the_key_files_token_uri_or_googles_default() {
    let custom = json!({"token_uri": "https://oauth2.example.test/token", "private_key_id": null});
    let credentials = key::parse(&service_account(custom)).ok().unwrap();
    let draft = credentials.draft(now()).unwrap();
    assert_eq!(draft.url, "https://oauth2.example.test/token");
    let (assertion, _) = signed_assertion(&service_account(
        json!({"token_uri": null, "private_key_id": null}),
    ));
    let header: Value =
        serde_json::from_slice(&unbase64url(assertion.split('.').next().unwrap())).unwrap();
    assert_eq!(
        header,
        json!({"alg": "RS256", "typ": "JWT"}),
        "no kid without private_key_id"
    );
    let claims: Value =
        serde_json::from_slice(&unbase64url(assertion.split('.').nth(1).unwrap())).unwrap();
    assert_eq!(claims["aud"], TOKEN_URI);
}

#[test]
fn builds_the_refresh_grant_for_gcloud_user_credentials() {
    let file = json!({
        "type": "authorized_user",
        "client_id": "764086051850-6qr4p6gpi6hn506pt8ejuq83di341hur.apps.googleusercontent.com",
        "client_secret": "d-FL95Q19q7MQmFpd7hHD0Ty",
        "refresh_token": "1//0g-refresh/token",
    });
    let credentials = key::parse(file.to_string().as_bytes()).ok().unwrap();
    let draft = credentials.draft(now()).unwrap();
    assert_eq!(draft.method, "POST");
    assert_eq!(draft.url, "https://oauth2.googleapis.com/token");
    assert_eq!(
        draft.headers,
        [(
            "Content-Type",
            "application/x-www-form-urlencoded".to_string()
        )]
    );
    assert!(!format!("{draft:?}").contains("refresh"));
    assert_eq!(
        String::from_utf8(draft.body).unwrap(),
        "client_id=764086051850-6qr4p6gpi6hn506pt8ejuq83di341hur.apps.googleusercontent.com\
         &client_secret=d-FL95Q19q7MQmFpd7hHD0Ty&refresh_token=1%2F%2F0g-refresh%2Ftoken\
         &grant_type=refresh_token"
    );
}

#[test]
fn explains_unusable_credential_files_without_quoting_them() {
    let broken_key = TEST_KEY.replace("MII", "XXX");
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"".to_vec(), "not a JSON credentials file"),
        (
            b"{\"private_key\": \"-----BEGIN".to_vec(),
            "not a JSON credentials file",
        ),
        (b"{}".to_vec(), "no \"type\""),
        (
            br#"{"type":"external_account"}"#.to_vec(),
            "\"external_account\" credentials are not supported",
        ),
        (
            br#"{"type":"impersonated_service_account"}"#.to_vec(),
            "\"impersonated_service_account\" credentials",
        ),
        (
            br#"{"type":"<script>"}"#.to_vec(),
            "unknown credentials \"type\"",
        ),
        (
            service_account(json!({"client_email": null})),
            "no \"client_email\"",
        ),
        (
            service_account(json!({"private_key": ""})),
            "no \"private_key\"",
        ),
        (
            service_account(json!({"private_key": broken_key})),
            "private_key is not a PKCS#8 PEM RSA key",
        ),
        (
            service_account(json!({"private_key": "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"})),
            "not a PKCS#8",
        ),
        (
            br#"{"type":"authorized_user","client_id":"c","client_secret":"s"}"#.to_vec(),
            "no \"refresh_token\"",
        ),
    ];
    for (content, phrase) in cases {
        let what = problem(&content);
        assert!(
            what.starts_with("GOOGLE_APPLICATION_CREDENTIALS: "),
            "{what}"
        );
        assert!(what.contains(phrase), "{what} lacks {phrase}");
        assert!(
            !what.contains("MII") && !what.contains("XXX") && !what.contains("script"),
            "{what}"
        );
    }
}

#[test]
fn a_missing_key_file_names_the_variable() {
    match key::load(Path::new("/nonexistent/pgwait/key.json")) {
        Err(TokenProblem::Missing { what }) => {
            assert!(
                what.starts_with("GOOGLE_APPLICATION_CREDENTIALS (\"/nonexistent"),
                "{what}"
            )
        }
        _ => panic!("loaded"),
    }
}
