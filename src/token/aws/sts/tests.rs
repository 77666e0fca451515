use std::time::{Duration, UNIX_EPOCH};

use super::*;
use crate::token::http::Scheme;

/// STS's documented answer, trimmed of nothing.
const GOOD: &str = r#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>amzn1.account.AF6RHO7KZU5XRVQJGXK6HB56KR2A</SubjectFromWebIdentityToken>
    <Audience>client.5498841531868486423.1548@apps.example.com</Audience>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::123456789012:assumed-role/FederatedWebIdentityRole/app1</Arn>
      <AssumedRoleId>AROACLKWSDQRAOEXAMPLE:app1</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <SessionToken>AQoDYXdzEE0a8ANXXXXXXXXNO1ewxE5TijQyp+IEXAMPLE</SessionToken>
      <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>
      <Expiration>2014-10-24T23:00:23Z</Expiration>
      <AccessKeyId>ASgeIAIOSFODNN7EXAMPLE</AccessKeyId>
    </Credentials>
    <SourceIdentity>SourceIdentityValue</SourceIdentity>
    <Provider>www.amazon.com</Provider>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata>
    <RequestId>ad4156e9-bce1-11e2-82e6-6b6efEXAMPLE</RequestId>
  </ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>"#;

fn error_reply(code: &str) -> String {
    format!(
        r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error><Type>Sender</Type><Code>{code}</Code><Message>token eyJhbGciOi… is bad</Message></Error>
  <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>
</ErrorResponse>"#
    )
}

fn malformed(what: &'static str) -> Result<(), TokenProblem> {
    Err(TokenProblem::Malformed { what })
}

#[test]
fn reads_the_credentials_of_a_documented_answer() {
    let creds = parse_reply(200, GOOD.as_bytes()).expect("credentials");
    assert_eq!(creds.access_key_id, "ASgeIAIOSFODNN7EXAMPLE");
    assert_eq!(
        creds.secret_access_key.expose(),
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
    );
    let token = creds.session_token.as_ref().map(Secret::expose);
    assert_eq!(
        token,
        Some("AQoDYXdzEE0a8ANXXXXXXXXNO1ewxE5TijQyp+IEXAMPLE")
    );
    assert_eq!(
        creds.expires,
        Some(UNIX_EPOCH + Duration::from_secs(1_414_191_623))
    );
}

#[test]
fn unescapes_xml_entities_in_values() {
    let body = GOOD.replace("K7MDENG/", "K7&amp;&lt;&gt;&quot;&apos;/");
    let creds = parse_reply(200, body.as_bytes()).expect("credentials");
    assert_eq!(
        creds.secret_access_key.expose(),
        "wJalrXUtnFEMI/K7&<>\"'/bPxRfiCYzEXAMPLEKEY"
    );
}

#[test]
fn refuses_answers_missing_or_doubling_a_field() {
    let cases: &[(String, &'static str)] = &[
        (
            GOOD.replace("<AccessKeyId>ASgeIAIOSFODNN7EXAMPLE</AccessKeyId>", ""),
            "AccessKeyId",
        ),
        (
            GOOD.replace("<SessionToken>", "<Other>")
                .replace("</SessionToken>", "</Other>"),
            "SessionToken",
        ),
        (
            GOOD.replace("2014-10-24T23:00:23Z", "tomorrow"),
            "Expiration",
        ),
        (
            GOOD.replace(
                "<Expiration>2014-10-24T23:00:23Z</Expiration>",
                "<Expiration></Expiration>",
            ),
            "Expiration",
        ),
        (
            GOOD.replace(
                "</AccessKeyId>",
                "</AccessKeyId><AccessKeyId>B</AccessKeyId>",
            ),
            "AccessKeyId",
        ),
        (GOOD.replace("K7MDENG/", "K7&nbsp;/"), "SecretAccessKey"),
        (GOOD.replace("K7MDENG/", "K7<b>x</b>/"), "SecretAccessKey"),
        (GOOD.replace("</Credentials>", ""), "Credentials"),
        (GOOD.replace("Credentials>", "Creds>"), "Credentials"),
        ("".to_string(), "Credentials"),
        ("{\"AccessKeyId\": \"x\"}".to_string(), "Credentials"),
    ];
    for (body, what) in cases {
        let got = parse_reply(200, body.as_bytes()).map(|_| ());
        assert_eq!(got, malformed(what), "{what}");
    }
}

#[test]
fn refuses_garbage_and_huge_answers_without_echoing_them() {
    let garbage: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    assert_eq!(
        parse_reply(200, &garbage).map(|_| ()),
        malformed("STS reply (not UTF-8)")
    );
    let huge = format!(
        "<Credentials><AccessKeyId>{}</AccessKeyId></Credentials>",
        "A".repeat(1 << 20)
    );
    assert_eq!(
        parse_reply(200, huge.as_bytes()).map(|_| ()),
        malformed("Expiration")
    );
    let open = "<Credentials>".repeat(100_000);
    assert_eq!(
        parse_reply(200, open.as_bytes()).map(|_| ()),
        malformed("Credentials")
    );
}

#[test]
fn error_codes_become_problems_without_their_message() {
    let cases: &[(u16, &str, TokenProblem)] = &[
        (400, "RequestExpired", TokenProblem::ClockSkew),
        (403, "SignatureDoesNotMatch", TokenProblem::ClockSkew),
        (
            400,
            "IDPCommunicationError",
            TokenProblem::NotReadyYet { code: 400 },
        ),
        (400, "Throttling", TokenProblem::NotReadyYet { code: 400 }),
        (
            503,
            "ServiceUnavailable",
            TokenProblem::Status { code: 503 },
        ),
        (500, "Anything", TokenProblem::Status { code: 500 }),
        (
            400,
            "InvalidIdentityToken",
            TokenProblem::Status { code: 400 },
        ),
        (403, "AccessDenied", TokenProblem::Status { code: 403 }),
        (
            400,
            "ExpiredTokenException",
            TokenProblem::Status { code: 400 },
        ),
        (429, "", TokenProblem::NotReadyYet { code: 429 }),
    ];
    for (status, code, want) in cases {
        let got = parse_reply(*status, error_reply(code).as_bytes()).map(|_| ());
        assert_eq!(got, Err(want.clone()), "{status} {code}");
    }
    assert_eq!(
        parse_reply(502, b"<html>Bad Gateway</html>").map(|_| ()),
        Err(TokenProblem::Status { code: 502 })
    );
}

#[test]
fn the_request_is_an_unsigned_form_post_for_the_2011_api() {
    let web = WebIdentity {
        token_file: PathBuf::from("/t"),
        role_arn: "arn:aws:iam::123456789012:role/app".into(),
        session_name: "botocore-session-1".into(),
        endpoint: endpoint(&Env::default(), "us-east-1"),
    };
    let url = Url {
        scheme: Scheme::Https,
        host: "sts.us-east-1.amazonaws.com".into(),
        port: 443,
        target: "/".into(),
    };
    let request = web.request(url.clone(), "eyJ.a+b/c=");
    assert_eq!((request.method, &request.url), ("POST", &url));
    let body = String::from_utf8(request.body).expect("ascii");
    assert_eq!(
        body,
        "Action=AssumeRoleWithWebIdentity&Version=2011-06-15\
         &RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fapp\
         &RoleSessionName=botocore-session-1&WebIdentityToken=eyJ.a%2Bb%2Fc%3D"
    );
    assert!(request
        .headers
        .iter()
        .all(|(name, _)| *name != "Authorization"));
}
