use std::time::{Duration, UNIX_EPOCH};

use super::*;
use crate::token::aws::container::Authorization;

/// Variables as name, value.
type Pairs<'a> = &'a [(&'a str, &'a str)];

fn select_in(pairs: &[(&str, &str)]) -> Result<Source, TokenError> {
    select(
        &Env::of(pairs),
        "eu-west-1",
        UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    )
}

fn problem(source: TokenSource, what: &str) -> Result<(), TokenError> {
    Err(TokenError::new(
        source,
        TokenProblem::Missing { what: what.into() },
    ))
}

const KEYS: &[(&str, &str)] = &[
    ("AWS_ACCESS_KEY_ID", "AKID"),
    ("AWS_SECRET_ACCESS_KEY", "s"),
];
const WEB: &[(&str, &str)] = &[
    ("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token"),
    ("AWS_ROLE_ARN", "arn:aws:iam::1:role/r"),
];
const RELATIVE: (&str, &str) = (
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "/v2/credentials/x",
);
const FULL: (&str, &str) = (
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "http://169.254.170.23/v1",
);

#[test]
fn environment_keys_come_first() {
    let all = [KEYS, WEB, &[RELATIVE, FULL]].concat();
    match select_in(&all) {
        Ok(Source::Environment(creds)) => {
            assert_eq!(creds.access_key_id, "AKID");
            assert_eq!(creds.secret_access_key.expose(), "s");
            assert!(creds.session_token.is_none() && creds.expires.is_none());
        }
        other => panic!("{other:?}"),
    }
    let with_session = [KEYS, &[("AWS_SESSION_TOKEN", "tok")]].concat();
    match select_in(&with_session) {
        Ok(Source::Environment(creds)) => {
            assert_eq!(
                creds.session_token.map(|t| t.expose().to_string()),
                Some("tok".into())
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn half_a_key_pair_names_the_missing_half() {
    let cases: &[(Pairs, &str)] = &[
        (&[("AWS_ACCESS_KEY_ID", "AKID")], "AWS_SECRET_ACCESS_KEY"),
        (&[("AWS_SECRET_ACCESS_KEY", "s")], "AWS_ACCESS_KEY_ID"),
        (
            &[("AWS_ACCESS_KEY_ID", "AKID"), ("AWS_SECRET_ACCESS_KEY", "")],
            "AWS_SECRET_ACCESS_KEY",
        ),
    ];
    for (pairs, what) in cases {
        let got = select_in(pairs).map(|_| ());
        assert_eq!(got, problem(TokenSource::AwsEnvironment, what), "{pairs:?}");
    }
}

#[test]
fn web_identity_comes_before_containers_and_defaults_its_session_name_and_endpoint() {
    let all = [WEB, &[RELATIVE, FULL]].concat();
    match select_in(&all) {
        Ok(Source::WebIdentity(web)) => {
            assert_eq!(web.token_file.to_str(), Some("/var/run/token"));
            assert_eq!(web.role_arn, "arn:aws:iam::1:role/r");
            assert_eq!(web.session_name, "botocore-session-1700000000");
            assert_eq!(web.endpoint.text, "https://sts.eu-west-1.amazonaws.com");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn web_identity_needs_a_role_but_a_role_alone_is_not_a_source() {
    let got = select_in(&WEB[..1]).map(|_| ());
    assert_eq!(got, problem(TokenSource::AwsWebIdentity, "AWS_ROLE_ARN"));
    assert!(matches!(select_in(&WEB[1..]), Ok(Source::Imds(_))));
}

#[test]
fn sts_endpoint_prefers_the_sts_variable_then_the_general_one() {
    let cases: &[(Pairs, &str, &str)] = &[
        (
            &[("AWS_ENDPOINT_URL", "http://localhost:4566")],
            "http://localhost:4566",
            "AWS_ENDPOINT_URL",
        ),
        (
            &[
                ("AWS_ENDPOINT_URL", "http://a"),
                ("AWS_ENDPOINT_URL_STS", "https://b"),
            ],
            "https://b",
            "AWS_ENDPOINT_URL_STS",
        ),
        (
            &[("AWS_ROLE_SESSION_NAME", "me")],
            "https://sts.eu-west-1.amazonaws.com",
            "the STS endpoint",
        ),
    ];
    for (extra, url, variable) in cases {
        match select_in(&[WEB, extra].concat()) {
            Ok(Source::WebIdentity(web)) => {
                assert_eq!(
                    (web.endpoint.text.as_str(), web.endpoint.variable),
                    (*url, *variable)
                );
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn china_regions_use_the_china_sts_domain() {
    let found = WebIdentity::from_env(&Env::of(WEB), "cn-north-1", UNIX_EPOCH);
    let web = found.ok().flatten().expect("web identity");
    assert_eq!(web.endpoint.text, "https://sts.cn-north-1.amazonaws.com.cn");
}

#[test]
fn relative_container_uri_beats_the_full_one_and_goes_to_the_ecs_agent() {
    match select_in(&[RELATIVE, FULL]) {
        Ok(Source::Container(c)) => {
            assert_eq!(c.url, "http://169.254.170.2/v2/credentials/x");
            assert_eq!(c.variable, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
        }
        other => panic!("{other:?}"),
    }
    match select_in(&[FULL]) {
        Ok(Source::Container(c)) => assert_eq!(c.url, "http://169.254.170.23/v1"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn container_authorization_file_beats_the_value_and_the_value_must_be_one_line() {
    let both = [
        FULL,
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "/var/run/auth"),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "Basic abc"),
    ];
    match select_in(&both) {
        Ok(Source::Container(c)) => {
            assert!(
                matches!(c.authorization, Some(Authorization::File(p)) if p.to_str() == Some("/var/run/auth"))
            )
        }
        other => panic!("{other:?}"),
    }
    match select_in(&[FULL, both[2]]) {
        Ok(Source::Container(c)) => {
            assert!(
                matches!(c.authorization, Some(Authorization::Value(v)) if v.expose() == "Basic abc")
            )
        }
        other => panic!("{other:?}"),
    }
    for bad in ["a\r\nX-Evil: 1", "a\nb", "a\rb"] {
        let got = select_in(&[FULL, ("AWS_CONTAINER_AUTHORIZATION_TOKEN", bad)]).map(|_| ());
        let what = "AWS_CONTAINER_AUTHORIZATION_TOKEN (one line, no CR or LF)";
        assert_eq!(got, problem(TokenSource::AwsContainer, what));
    }
}

#[test]
fn instance_metadata_is_last_and_follows_the_endpoint_settings() {
    let cases: &[(Pairs, &str)] = &[
        (&[], "http://169.254.169.254"),
        (
            &[("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "IPv6")],
            "http://[fd00:ec2::254]",
        ),
        (
            &[("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "ipv4")],
            "http://169.254.169.254",
        ),
        (
            &[
                (
                    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
                    "http://127.0.0.1:1338/",
                ),
                ("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "IPv6"),
            ],
            "http://127.0.0.1:1338",
        ),
        (
            &[
                ("AWS_EC2_METADATA_DISABLED", "false"),
                ("AWS_ROLE_ARN", "r"),
            ],
            "http://169.254.169.254",
        ),
    ];
    for (pairs, base) in cases {
        match select_in(pairs) {
            Ok(Source::Imds(imds)) => assert_eq!(imds.base, *base, "{pairs:?}"),
            other => panic!("{pairs:?}: {other:?}"),
        }
    }
}

#[test]
fn nothing_configured_with_metadata_disabled_is_no_source() {
    for value in ["true", "TRUE", "True"] {
        let got = select_in(&[("AWS_EC2_METADATA_DISABLED", value)]);
        let err = got.map(|_| ()).unwrap_err();
        assert_eq!(err.source, TokenSource::NoSource(Cloud::Aws));
    }
}

#[test]
fn an_unknown_metadata_endpoint_mode_is_refused() {
    let got = select_in(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "ipv5")]).map(|_| ());
    let what = "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE (IPv4 or IPv6)";
    assert_eq!(got, problem(TokenSource::AwsImds, what));
}

#[test]
fn debug_output_holds_no_secret() {
    let pairs = [KEYS, &[("AWS_SESSION_TOKEN", "sessiontok")]].concat();
    let shown = format!("{:?}", select_in(&pairs));
    assert!(
        shown.contains("AKID") && !shown.contains("sessiontok"),
        "{shown}"
    );
    let shown = format!(
        "{:?}",
        select_in(&[FULL, ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "hunter2")])
    );
    assert!(!shown.contains("hunter2"), "{shown}");
}
