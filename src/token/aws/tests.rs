use std::time::UNIX_EPOCH;

use super::*;
use crate::token::oauth;

const T0: u64 = 1_700_000_000;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn creds(expires: Option<u64>) -> AwsCredentials {
    AwsCredentials {
        access_key_id: "AKID".into(),
        secret_access_key: Secret::new("secret".into()),
        session_token: expires.map(|_| Secret::new("session".into())),
        expires: expires.map(at),
    }
}

fn key(host: &str) -> Key {
    (host.to_string(), 5432, "app".to_string())
}

#[test]
fn region_comes_from_the_flag_then_aws_region_then_the_default_region() {
    let both = Env::of(&[
        ("AWS_REGION", "eu-west-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ]);
    let default = Env::of(&[("AWS_REGION", ""), ("AWS_DEFAULT_REGION", "us-east-1")]);
    assert_eq!(region(Some("ap-south-1"), &both), Ok("ap-south-1".into()));
    assert_eq!(region(None, &both), Ok("eu-west-1".into()));
    assert_eq!(region(Some(""), &default), Ok("us-east-1".into()));
}

#[test]
fn a_missing_or_odd_region_names_where_it_is_set() {
    let missing = |what: &str| {
        Err(TokenError::new(
            TokenSource::AwsRegion,
            TokenProblem::Missing { what: what.into() },
        ))
    };
    let none = region(None, &Env::default());
    assert_eq!(
        none,
        missing("--aws-region, AWS_REGION or AWS_DEFAULT_REGION")
    );
    let odd = region(None, &Env::of(&[("AWS_REGION", "evil.com/x")]));
    assert_eq!(
        odd,
        missing("AWS_REGION (not a region name such as us-east-1)")
    );
    let upper = region(Some("US-EAST-1"), &Env::default());
    assert_eq!(
        upper,
        missing("--aws-region (not a region name such as us-east-1)")
    );
}

#[test]
fn a_token_ends_with_its_15_minutes_or_its_credentials() {
    let cases: &[(Option<u64>, u64)] = &[
        (None, T0 + 900),
        (Some(T0 + 3600), T0 + 900),
        (Some(T0 + 900), T0 + 900),
        (Some(T0 + 600), T0 + 600),
        (Some(T0 + 61), T0 + 61),
        (Some(T0 - 10), T0),
    ];
    for &(credentials, want) in cases {
        assert_eq!(
            token_expiry(at(T0), credentials.map(at)),
            at(want),
            "{credentials:?}"
        );
    }
}

#[test]
fn credentials_are_refreshed_five_minutes_before_they_expire() {
    // (expires, seconds after T0, still fresh, still usable for one more token)
    let cases: &[(Option<u64>, u64, bool, bool)] = &[
        (None, 10_000_000, true, true),
        (Some(T0 + 3600), 0, true, true),
        (Some(T0 + 3600), 3600 - 301, true, true),
        (Some(T0 + 3600), 3600 - 300, false, true),
        (Some(T0 + 3600), 3600 - 61, false, true),
        (Some(T0 + 3600), 3600 - 60, false, false),
        (Some(T0 + 3600), 3600, false, false),
    ];
    for &(expires, after, fresh, usable) in cases {
        let creds = creds(expires);
        let now = at(T0 + after);
        assert_eq!(
            lasts(&creds, now, REFRESH_WINDOW),
            fresh,
            "{expires:?} +{after}"
        );
        assert_eq!(
            lasts(&creds, now, TOKEN_MARGIN),
            usable,
            "{expires:?} +{after}"
        );
    }
}

#[test]
fn a_token_signed_with_temporary_credentials_carries_them_and_ends_with_them() {
    let short = creds(Some(T0 + 400));
    let minted = sign(&key("a"), "us-east-1", &short, at(T0));
    assert_eq!(minted.expires, Some(at(T0 + 400)));
    assert!(minted
        .secret
        .expose()
        .contains("X-Amz-Security-Token=session"));
    let long_term = sign(&key("a"), "us-east-1", &creds(None), at(T0));
    assert_eq!(long_term.expires, Some(at(T0 + 900)));
}

#[test]
fn credentials_debug_shows_the_key_id_only() {
    let shown = format!("{:?}", creds(Some(T0)));
    assert_eq!(shown, "AwsCredentials(AKID, ***)");
}

#[test]
fn token_files_are_trimmed_bounded_and_never_quoted() {
    let dir = std::env::temp_dir().join(format!("pgwait-aws-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let write = |name: &str, text: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        path
    };
    let read = |path: &std::path::Path| oauth::read_token("AWS_WEB_IDENTITY_TOKEN_FILE", path);
    let problem = |path: &std::path::Path, why: &str| {
        Err(TokenProblem::Missing {
            what: format!("AWS_WEB_IDENTITY_TOKEN_FILE ({path:?}): {why}"),
        })
    };
    let good = write("good", b"eyJhbGciOi.x.y\n");
    assert_eq!(read(&good), Ok("eyJhbGciOi.x.y".into()));
    let empty = write("empty", b" \n");
    assert_eq!(read(&empty), problem(&empty, "empty"));
    let huge = write("huge", &vec![b'a'; 64 * 1024 + 1]);
    assert_eq!(read(&huge), problem(&huge, "larger than 64 KiB"));
    let absent = dir.join("absent");
    assert_eq!(
        read(&absent),
        problem(&absent, "cannot open: entity not found")
    );
    let secret = write("secret", b"\xffsecret-token");
    let got = format!("{:?}", read(&secret));
    assert!(!got.contains("secret-token"), "{got}");
    std::fs::remove_dir_all(&dir).expect("clean up");
}
