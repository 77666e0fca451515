use super::*;

/// Environment variables as a test writes them.
type Pairs<'a> = &'a [(&'a str, &'a str)];

fn select(pairs: &[(&str, &str)]) -> Result<Source, TokenError> {
    Source::select(&Env::of(pairs))
}

fn missing(pairs: &[(&str, &str)]) -> (TokenSource, String) {
    match select(pairs) {
        Err(TokenError {
            source,
            problem: TokenProblem::Missing { what },
        }) => (source, what),
        Err(other) => panic!("{other:?}"),
        Ok(source) => panic!("selected {:?}", source.kind()),
    }
}

const WORKLOAD: &[(&str, &str)] = &[
    (
        "AZURE_FEDERATED_TOKEN_FILE",
        "/var/run/secrets/azure/tokens/azure-identity-token",
    ),
    ("AZURE_CLIENT_ID", "11111111-2222-3333-4444-555555555555"),
    ("AZURE_TENANT_ID", "72f988bf-86f1-41af-91ab-2d7cd011db47"),
];

#[test]
fn picks_sources_in_default_azure_credential_order() {
    let app_service = &[
        ("IDENTITY_ENDPOINT", "http://localhost:42356/msi/token"),
        ("IDENTITY_HEADER", "h"),
    ];
    let everything: Vec<_> = WORKLOAD.iter().chain(app_service).copied().collect();
    let cases: &[(Pairs, TokenSource)] = &[
        (&everything, TokenSource::AzureWorkloadIdentity),
        (WORKLOAD, TokenSource::AzureWorkloadIdentity),
        (app_service, TokenSource::AzureAppService),
        (&[], TokenSource::AzureImds),
        // A client and tenant without a token file are a user-assigned identity's ID for IMDS.
        (&WORKLOAD[1..], TokenSource::AzureImds),
        (&[("IDENTITY_HEADER", "h")], TokenSource::AzureImds),
        // Empty counts as unset, as in the SDKs.
        (
            &[
                ("AZURE_FEDERATED_TOKEN_FILE", ""),
                ("IDENTITY_ENDPOINT", ""),
            ],
            TokenSource::AzureImds,
        ),
    ];
    for (pairs, expected) in cases {
        let source = select(pairs).unwrap_or_else(|e| panic!("{pairs:?}: {e:?}"));
        assert_eq!(source.kind(), *expected, "{pairs:?}");
    }
}

#[test]
fn names_what_a_half_configured_source_lacks() {
    let cases: &[(Pairs, TokenSource, &str)] = &[
        (
            &[WORKLOAD[0]],
            TokenSource::AzureWorkloadIdentity,
            "AZURE_CLIENT_ID and AZURE_TENANT_ID",
        ),
        (
            &[WORKLOAD[0], WORKLOAD[1]],
            TokenSource::AzureWorkloadIdentity,
            "AZURE_TENANT_ID (AZURE",
        ),
        (
            &[WORKLOAD[0], WORKLOAD[2]],
            TokenSource::AzureWorkloadIdentity,
            "AZURE_CLIENT_ID (AZURE",
        ),
        (
            &[(
                "IDENTITY_ENDPOINT",
                "http://localhost:40342/metadata/identity/oauth2/token",
            )],
            TokenSource::AzureAppService,
            "Azure Arc",
        ),
    ];
    for (pairs, source, phrase) in cases {
        let (got, what) = missing(pairs);
        assert_eq!(got, *source, "{pairs:?}");
        assert!(what.contains(phrase), "{pairs:?}: {what}");
    }
}

#[test]
fn refuses_a_tenant_that_would_change_the_url_path() {
    for tenant in ["../common", "a/b", "t?x=1", "tenant id", "t%2f"] {
        let pairs = [WORKLOAD[0], WORKLOAD[1], ("AZURE_TENANT_ID", tenant)];
        let (source, what) = missing(&pairs);
        assert_eq!(source, TokenSource::AzureWorkloadIdentity);
        assert!(what.starts_with("AZURE_TENANT_ID"), "{what}");
    }
    for tenant in [
        "contoso.onmicrosoft.com",
        "72f988bf-86f1-41af-91ab-2d7cd011db47",
    ] {
        assert!(valid_tenant(tenant), "{tenant}");
    }
}

#[test]
fn normalizes_the_authority_host_to_https_without_a_trailing_slash() {
    let cases = [
        (
            "https://login.microsoftonline.com/",
            Ok("https://login.microsoftonline.com"),
        ),
        (
            "login.microsoftonline.us",
            Ok("https://login.microsoftonline.us"),
        ),
        (
            "https://login.chinacloudapi.cn//",
            Ok("https://login.chinacloudapi.cn"),
        ),
        ("http://login.microsoftonline.com", Err(())),
        ("ftp://x", Err(())),
    ];
    for (host, expected) in cases {
        let got = authority(host).map_err(|_| ());
        assert_eq!(got.as_deref(), expected.as_deref(), "{host}");
    }
}

fn workload_draft(extra: &[(&str, &str)]) -> Draft {
    let pairs: Vec<_> = WORKLOAD.iter().chain(extra).copied().collect();
    match select(&pairs) {
        Ok(Source::Workload(w)) => w.draft("eyJhbGciOi.payload.sig"),
        _ => panic!("not workload identity"),
    }
}

#[test]
fn builds_the_workload_identity_token_request() {
    let draft = workload_draft(&[]);
    assert_eq!(draft.method, "POST");
    assert_eq!(
        draft.url,
        "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token"
    );
    assert_eq!(draft.origin, "AZURE_AUTHORITY_HOST");
    assert_eq!(
        draft.headers,
        [(
            "Content-Type",
            "application/x-www-form-urlencoded".to_string()
        )]
    );
    let body = String::from_utf8(draft.body).unwrap();
    assert_eq!(
        body,
        "client_assertion=eyJhbGciOi.payload.sig\
         &client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer\
         &client_id=11111111-2222-3333-4444-555555555555\
         &grant_type=client_credentials\
         &scope=https%3A%2F%2Fossrdbms-aad.database.windows.net%2F.default"
    );
    let sovereign =
        workload_draft(&[("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.us/")]);
    assert!(
        sovereign
            .url
            .starts_with("https://login.microsoftonline.us/72f9"),
        "{}",
        sovereign.url
    );
}

#[test]
fn reads_the_federated_token_file_trimmed_at_mint_time() {
    let dir = std::env::temp_dir().join(format!("pgwait-azure-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("token");
    let path = file.to_str().unwrap();
    let pairs = [
        ("AZURE_FEDERATED_TOKEN_FILE", path),
        WORKLOAD[1],
        WORKLOAD[2],
    ];
    let Ok(Source::Workload(w)) = select(&pairs) else {
        panic!("not workload identity")
    };
    assert!(
        matches!(w.assertion(), Err(TokenProblem::Missing { .. })),
        "no file yet"
    );
    std::fs::write(&file, "  header.payload.sig\n").unwrap();
    assert_eq!(w.assertion().unwrap(), "header.payload.sig");
    std::fs::write(&file, "\n\n").unwrap();
    match w.assertion() {
        Err(TokenProblem::Missing { what }) => assert!(what.ends_with("empty"), "{what}"),
        other => panic!("{other:?}"),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn builds_the_app_service_request_with_its_header_and_client_id() {
    let pairs = [
        ("IDENTITY_ENDPOINT", "http://localhost:42356/msi/token"),
        ("IDENTITY_HEADER", "a-secret-header"),
        ("AZURE_CLIENT_ID", "cid"),
    ];
    let Ok(source) = select(&pairs) else { panic!() };
    let draft = source.draft().unwrap();
    assert_eq!(draft.method, "GET");
    assert_eq!(
        draft.url,
        "http://localhost:42356/msi/token?api-version=2019-08-01\
         &resource=https%3A%2F%2Fossrdbms-aad.database.windows.net&client_id=cid"
    );
    assert_eq!(draft.origin, "IDENTITY_ENDPOINT");
    assert_eq!(
        draft.headers,
        [("X-IDENTITY-HEADER", "a-secret-header".to_string())]
    );
    assert!(draft.body.is_empty());
    assert!(!format!("{draft:?}").contains("a-secret-header"));
    assert_eq!(source.not_ready(), THROTTLED);
}

#[test]
fn appends_to_an_identity_endpoint_that_already_has_a_query() {
    let pairs = [
        ("IDENTITY_ENDPOINT", "http://127.0.0.1:8081/token?x=1"),
        ("IDENTITY_HEADER", "h"),
    ];
    let draft = select(&pairs).ok().unwrap().draft().unwrap();
    assert!(
        draft
            .url
            .starts_with("http://127.0.0.1:8081/token?x=1&api-version=2019-08-01&"),
        "{}",
        draft.url
    );
}

#[test]
fn builds_the_imds_request_honouring_the_pod_identity_override() {
    let cases: &[(Pairs, &str, &str)] = &[
        (
            &[],
            "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01\
              &resource=https%3A%2F%2Fossrdbms-aad.database.windows.net",
            "the IMDS address",
        ),
        (
            &[("AZURE_CLIENT_ID", "a b")],
            "http://169.254.169.254/metadata/identity/oauth2/token\
              ?api-version=2018-02-01&resource=https%3A%2F%2Fossrdbms-aad.database.windows.net\
              &client_id=a%20b",
            "the IMDS address",
        ),
        (
            &[(
                "AZURE_POD_IDENTITY_AUTHORITY_HOST",
                "http://127.0.0.1:2579/",
            )],
            "http://127.0.0.1:2579/metadata/identity/oauth2/token?api-version=2018-02-01\
              &resource=https%3A%2F%2Fossrdbms-aad.database.windows.net",
            "AZURE_POD_IDENTITY_AUTHORITY_HOST",
        ),
    ];
    for (pairs, url, origin) in cases {
        let source = select(pairs).ok().unwrap();
        let draft = source.draft().unwrap();
        assert_eq!(draft.method, "GET");
        assert_eq!(draft.url, *url);
        assert_eq!(draft.origin, *origin);
        assert_eq!(draft.headers, [("Metadata", "true".to_string())]);
        assert_eq!(source.not_ready(), IMDS_NOT_READY);
    }
}

#[test]
fn imds_boot_throttling_and_missing_identity_are_retryable_but_400_is_not() {
    for code in [404, 410, 429] {
        assert_eq!(
            oauth::check_status(code, IMDS_NOT_READY),
            Err(TokenProblem::NotReadyYet { code })
        );
    }
    for code in [400, 401, 403, 500, 503] {
        assert_eq!(
            oauth::check_status(code, IMDS_NOT_READY),
            Err(TokenProblem::Status { code })
        );
    }
}
