use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::string::{BmpString, UniversalString};
use rcgen::{
    date_time_ymd, CertificateParams, CustomExtension, DistinguishedName, DnType, DnValue, Issuer,
    KeyPair,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use super::der::Tlv;
use super::name::{directory_string, name_text};
use super::*;

/// Made with `openssl req -x509 -newkey ec -days 10000 -utf8` (OpenSSL 3.0.19): UTF-8 and
/// emailAddress attributes, UTCTime then GeneralizedTime, e-mail and URI names among the SANs.
const OPENSSL_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIC7jCCApWgAwIBAgIUCw8T+aSjRNfkrUTXxHdgcNfmm7kwCgYIKoZIzj0EAwIw
gZQxCzAJBgNVBAYTAkRFMQ8wDQYDVQQIDAZCZXJsaW4xDzANBgNVBAcMBkJlcmxp
bjEWMBQGA1UECgwNRXjDpG1wbGUgR21iSDESMBAGA1UECwwJRGF0YWJhc2VzMRcw
FQYDVQQDDA5kYi5leGFtcGxlLmNvbTEeMBwGCSqGSIb3DQEJARYPZGJhQGV4YW1w
bGUuY29tMCAXDTI2MTIwMzE0NTUwNloYDzIwNTQwNDIwMTQ1NTA2WjCBlDELMAkG
A1UEBhMCREUxDzANBgNVBAgMBkJlcmxpbjEPMA0GA1UEBwwGQmVybGluMRYwFAYD
VQQKDA1FeMOkbXBsZSBHbWJIMRIwEAYDVQQLDAlEYXRhYmFzZXMxFzAVBgNVBAMM
DmRiLmV4YW1wbGUuY29tMR4wHAYJKoZIhvcNAQkBFg9kYmFAZXhhbXBsZS5jb20w
WTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAS0Vgc+8jpyDjdsbWi5zinBbXnD5cP8
Wn4Tt8MsENfS1xJkUgFjNcYKZbuir+6AgE704WDUsHV28qPw8uwHVM7Jo4HAMIG9
MB0GA1UdDgQWBBT2MrjyVh4ljsGj0ZqP4oTS1/FNTzAfBgNVHSMEGDAWgBT2Mrjy
Vh4ljsGj0ZqP4oTS1/FNTzAPBgNVHRMBAf8EBTADAQH/MGoGA1UdEQRjMGGCDmRi
LmV4YW1wbGUuY29tghAqLmRiLmV4YW1wbGUuY29thwQKAAAFhxAgAQ24AAAAAAAA
AAAAAAAFgQ9kYmFAZXhhbXBsZS5jb22GFGh0dHBzOi8vZXhhbXBsZS5jb20vMAoG
CCqGSM49BAMCA0cAMEQCIDu96qr5qTY4Wq1Dk1UAQm4yEwVMWati8iiPJIXQ7khc
AiBKZ9Tg8tfN1fIRp7EPpprSt34R5Pk2dAWSEMk+zDv4Sg==
-----END CERTIFICATE-----
";

fn openssl_der() -> Vec<u8> {
    CertificateDer::from_pem_slice(OPENSSL_PEM.as_bytes())
        .unwrap()
        .to_vec()
}

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// Params with exactly `names` as the subject (rcgen's default adds a common name) and the
/// alternative names `sans`, valid from 2024-01-02 to `until`.
fn params(names: &[(DnType, DnValue)], sans: &[&str], until: (i32, u8, u8)) -> CertificateParams {
    let mut params =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name = DistinguishedName::new();
    for (kind, value) in names {
        params.distinguished_name.push(kind.clone(), value.clone());
    }
    params.not_before = date_time_ymd(2024, 1, 2);
    params.not_after = date_time_ymd(until.0, until.1, until.2);
    params
}

fn self_signed(params: &CertificateParams) -> Vec<u8> {
    let key = KeyPair::generate().unwrap();
    params.self_signed(&key).unwrap().der().to_vec()
}

fn cn(text: &str) -> (DnType, DnValue) {
    (DnType::CommonName, DnValue::Utf8String(text.to_string()))
}

#[test]
fn summarises_a_self_signed_rcgen_certificate() {
    let names = [
        (
            DnType::CountryName,
            DnValue::PrintableString("DE".try_into().unwrap()),
        ),
        (DnType::StateOrProvinceName, "Berlin".into()),
        (DnType::LocalityName, "Mitte".into()),
        (DnType::OrganizationName, "Example".into()),
        (DnType::OrganizationalUnitName, "DBA".into()),
        cn("db.example.com"),
    ];
    let sans = ["db.example.com", "replica.example.com", "127.0.0.1", "::1"];
    let summary = summarize(&self_signed(&params(&names, &sans, (2030, 6, 30)))).unwrap();
    let want = vec![
        (AttrName::Country, "DE".to_string()),
        (AttrName::State, "Berlin".to_string()),
        (AttrName::Locality, "Mitte".to_string()),
        (AttrName::Organization, "Example".to_string()),
        (AttrName::OrganizationalUnit, "DBA".to_string()),
        (AttrName::CommonName, "db.example.com".to_string()),
    ];
    assert_eq!(summary.subject, want);
    assert_eq!(summary.issuer, want);
    assert!(summary.self_signed);
    assert_eq!(summary.not_before, at(1_704_153_600));
    assert_eq!(summary.not_after, at(1_909_008_000));
    assert_eq!(summary.dns_names, ["db.example.com", "replica.example.com"]);
    assert_eq!(summary.ip_addresses, [ip("127.0.0.1"), ip("::1")]);
    assert_eq!(summary.names_omitted, 0);
    assert_eq!(
        summary.subject_text(),
        "C=DE, ST=Berlin, L=Mitte, O=Example, OU=DBA, CN=db.example.com"
    );
}

#[test]
fn a_ca_signed_leaf_names_its_issuer() {
    let ca_key = KeyPair::generate().unwrap();
    let ca_params = params(&[cn("Example CA")], &[], (2030, 6, 30));
    let issuer = Issuer::from_params(&ca_params, &ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = params(&[cn("db.example.com")], &["db.example.com"], (2030, 6, 30));
    let der = leaf.signed_by(&leaf_key, &issuer).unwrap().der().to_vec();
    let summary = summarize(&der).unwrap();
    assert_eq!(summary.subject_text(), "CN=db.example.com");
    assert_eq!(summary.issuer_text(), "CN=Example CA");
    assert!(!summary.self_signed);
}

#[test]
fn reads_generalized_time_after_2049() {
    let der = self_signed(&params(&[cn("far")], &[], (2051, 1, 1)));
    // rcgen follows RFC 5280: UTCTime for 2024, GeneralizedTime for 2051.
    assert!(der.windows(2).any(|w| w == [0x17, 13]));
    assert!(der.windows(2).any(|w| w == [0x18, 15]));
    let summary = summarize(&der).unwrap();
    assert_eq!(summary.not_after, at(2_556_144_000));
}

#[test]
fn summarises_an_openssl_certificate() {
    let summary = summarize(&openssl_der()).unwrap();
    assert_eq!(
        summary.subject_text(),
        "C=DE, ST=Berlin, L=Berlin, O=Exämple GmbH, OU=Databases, CN=db.example.com, \
         1.2.840.113549.1.9.1=dba@example.com"
    );
    assert!(summary.self_signed);
    assert_eq!(summary.not_before, at(1_796_309_706));
    assert_eq!(summary.not_after, at(2_660_309_706));
    assert_eq!(summary.dns_names, ["db.example.com", "*.db.example.com"]);
    assert_eq!(summary.ip_addresses, [ip("10.0.0.5"), ip("2001:db8::5")]);
}

#[test]
fn decodes_bmp_and_universal_strings() {
    let names = [
        (
            DnType::OrganizationName,
            DnValue::BmpString(BmpString::try_from("Exämple ☃").unwrap()),
        ),
        (
            DnType::CommonName,
            DnValue::UniversalString(UniversalString::try_from("db 🐘").unwrap()),
        ),
    ];
    let summary = summarize(&self_signed(&params(&names, &[], (2030, 1, 1)))).unwrap();
    assert_eq!(summary.subject_text(), "O=Exämple ☃, CN=db 🐘");
}

#[test]
fn decodes_each_string_type_or_refuses_it() {
    let table: [(u8, &[u8], Result<&str, X509Error>); 10] = [
        (0x14, b"Ex\xe4mple", Ok("Exämple")),
        (0x13, b"DE", Ok("DE")),
        (0x13, b"D\xc3\xa4", Err(X509Error::BadString("f"))),
        (0x0c, b"\xc3\xa4", Ok("ä")),
        (0x0c, b"\xc3", Err(X509Error::BadString("f"))),
        (0x1e, b"\x00A\x26\x03", Ok("A☃")),
        (0x1e, b"\x00A\x26", Err(X509Error::BadString("f"))),
        (0x1e, b"\xd8\x00", Err(X509Error::BadString("f"))),
        (0x1c, b"\x00\x11\x00\x00", Err(X509Error::BadString("f"))),
        (0x04, b"\x01\xff", Ok("#01ff")),
    ];
    for (tag, value, want) in table {
        let got = directory_string(Tlv { tag, value }, "f");
        assert_eq!(
            got.as_deref().map_err(Clone::clone),
            want,
            "{tag:#x} {value:02x?}"
        );
    }
}

#[test]
fn escapes_what_could_forge_a_line_or_an_attribute() {
    let table = [
        ("plain é", "plain é"),
        ("evil\nWARN forged", "evil\\x0aWARN forged"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("\u{85}next", "\\x85next"),
        ("abc\u{202e}txt.exe", "abc\\u{202e}txt.exe"),
        ("a, CN=b", "a\\, CN\\=b"),
        ("back\\slash", "back\\\\slash"),
        (" #lead", "\\ #lead"),
        ("#x ", "\\#x\\ "),
    ];
    for (value, want) in table {
        let attributes = [(AttrName::CommonName, value.to_string())];
        assert_eq!(name_text(&attributes), format!("CN={want}"), "{value:?}");
    }
}

#[test]
fn caps_long_texts_and_many_names() {
    let long = "a".repeat(300);
    let sans: Vec<String> = (0..100).map(|i| format!("h{i}.example.com")).collect();
    let sans: Vec<&str> = sans.iter().map(String::as_str).collect();
    let summary = summarize(&self_signed(&params(&[cn(&long)], &sans, (2030, 1, 1)))).unwrap();
    assert_eq!(summary.subject[0].1, format!("{}…", "a".repeat(256)));
    assert_eq!(summary.dns_names.len(), 64);
    assert_eq!(summary.dns_names[63], "h63.example.com");
    assert_eq!(summary.names_omitted, 36);
}

#[test]
fn other_attribute_types_are_named_by_oid() {
    let email = (
        DnType::CustomDnType(vec![1, 2, 840, 113_549, 1, 9, 1]),
        "a@b".into(),
    );
    let summary = summarize(&self_signed(&params(&[email], &[], (2030, 1, 1)))).unwrap();
    let want = AttrName::Other("1.2.840.113549.1.9.1".to_string());
    assert_eq!(summary.subject, [(want, "a@b".to_string())]);
}

/// A cert whose only SAN extension is `general_names` (the GeneralNames contents, hand-built).
fn with_raw_sans(general_names: &[u8]) -> Vec<u8> {
    let mut params = params(&[cn("raw")], &[], (2030, 1, 1));
    let mut value = vec![0x30, general_names.len() as u8];
    value.extend_from_slice(general_names);
    let extension = CustomExtension::from_oid_content(&[2, 5, 29, 17], value);
    params.custom_extensions.push(extension);
    self_signed(&params)
}

#[test]
fn reads_or_refuses_hand_built_alternative_names() {
    let uri = [&[0x86, 0x03][..], b"a:b"].concat();
    let dns = [&[0x82, 0x01][..], b"h"].concat();
    let summary = summarize(&with_raw_sans(&[uri, dns].concat())).unwrap();
    assert_eq!(summary.dns_names, ["h"]);
    let table: [(&[u8], X509Error); 3] = [
        (&[0x87, 0x05, 1, 2, 3, 4, 5], X509Error::BadAddress),
        (&[0x82, 0x01, 0xe4], X509Error::BadString("subjectAltName")),
        (&[0x82, 0x05, b'h'], X509Error::Truncated),
    ];
    for (names, want) in table {
        assert_eq!(summarize(&with_raw_sans(names)), Err(want), "{names:02x?}");
    }
}

#[test]
fn refuses_two_alternative_name_extensions() {
    let mut params = params(&[cn("two")], &["a.example"], (2030, 1, 1));
    let second = CustomExtension::from_oid_content(&[2, 5, 29, 17], vec![0x30, 0x00]);
    params.custom_extensions.push(second);
    assert_eq!(
        summarize(&self_signed(&params)),
        Err(X509Error::DuplicateExtension)
    );
}

#[test]
fn refuses_every_truncation_of_a_valid_certificate() {
    let der = openssl_der();
    for end in 0..der.len() {
        assert!(summarize(&der[..end]).is_err(), "prefix of {end} bytes");
    }
    assert!(summarize(&der).is_ok());
}

#[test]
fn refuses_hostile_framing() {
    let mut trailing = openssl_der();
    trailing.push(0);
    let mut too_long = openssl_der();
    too_long[3] += 1; // the outer length now claims one byte more than there is
    let mut indefinite = openssl_der();
    indefinite.splice(1..4, [0x80]);
    let table: [(&[u8], X509Error); 7] = [
        (&[], X509Error::Unexpected("Certificate")),
        (&trailing, X509Error::TrailingBytes("Certificate")),
        (&too_long, X509Error::Truncated),
        (&indefinite, X509Error::IndefiniteLength),
        (&[0x30, 0x84, 0x7f, 0xff, 0xff, 0xff], X509Error::BadLength),
        (&[0x30, 0x00], X509Error::Unexpected("tbsCertificate")),
        (&vec![0x30; MAX_DER_BYTES + 1], X509Error::TooLarge),
    ];
    for (bytes, want) in table {
        assert_eq!(
            summarize(bytes),
            Err(want),
            "{:02x?}",
            &bytes[..bytes.len().min(8)]
        );
    }
}

/// `depth` SEQUENCEs, each the only content of the one around it.
fn nested(depth: usize) -> Vec<u8> {
    let mut der = Vec::new();
    for _ in 0..depth {
        let len = der.len();
        let mut outer = match len {
            0..=0x7f => vec![0x30, len as u8],
            0x80..=0xff => vec![0x30, 0x81, len as u8],
            _ => vec![0x30, 0x82, (len >> 8) as u8, len as u8],
        };
        outer.append(&mut der);
        der = outer;
    }
    der
}

#[test]
fn refuses_deep_nesting_without_recursing() {
    let der = nested(15_000);
    assert!(der.len() <= MAX_DER_BYTES);
    assert_eq!(
        summarize(&der),
        Err(X509Error::Unexpected("signatureAlgorithm"))
    );
}

/// xorshift64: deterministic, so a failure reproduces.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn random_and_mutated_inputs_never_panic() {
    let mut state = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..20_000 {
        let len = (next(&mut state) % 600) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| next(&mut state) as u8).collect();
        let _ = summarize(&bytes);
    }
    let der = openssl_der();
    for _ in 0..20_000 {
        let mut mutated = der.clone();
        for _ in 0..=(next(&mut state) % 4) {
            let at = (next(&mut state) as usize) % mutated.len();
            mutated[at] = next(&mut state) as u8;
        }
        if let Ok(summary) = summarize(&mutated) {
            assert!(!summary.subject_text().contains('\n'));
        }
    }
}

#[test]
fn errors_read_as_sentences_without_input() {
    let text = X509Error::BadTime("validity.notAfter").to_string();
    assert_eq!(
        text,
        "the certificate's validity.notAfter is not a valid time"
    );
}

#[test]
fn keeps_at_most_32_attributes_of_a_name() {
    // rcgen keeps one value per type, so each attribute gets a type of its own.
    let names: Vec<_> = (0..40)
        .map(|i| {
            (
                DnType::CustomDnType(vec![2, 5, 4, 100 + i]),
                format!("n{i}").into(),
            )
        })
        .collect();
    let summary = summarize(&self_signed(&params(&names, &[], (2030, 1, 1)))).unwrap();
    assert_eq!(summary.subject.len(), 32);
    let last = (AttrName::Other("2.5.4.131".to_string()), "n31".to_string());
    assert_eq!(summary.subject[31], last);
}
