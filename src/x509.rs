//! What `--diagnose` says about the certificate a server presents: subject, issuer, validity and
//! subject alternative names, read from its DER by hand so the binary carries no ASN.1 crate.
//!
//! rustls verifies certificates; this module only describes one, so it reads just the fields it
//! shows and skips the rest. A server wrote every byte, so nothing here trusts them: lengths,
//! counts and text are bounded (see `der`), each text is capped, and a certificate that cannot be
//! read is an [`X509Error`] naming the field, never echoing the bytes.

mod der;
mod name;
mod time;

use std::fmt;
use std::net::IpAddr;
use std::time::SystemTime;

use der::{Reader, BIT_STRING, BOOLEAN, INTEGER, OCTET_STRING, OID, SEQUENCE};
use name::{ascii, capped, name, name_text};

/// Larger than any real certificate (a TLS handshake message is at most 16 MiB, rustls keeps it
/// to 64 KiB); bounds all work below.
const MAX_DER_BYTES: usize = 64 * 1024;
/// Subject alternative names kept; the rest are counted in `names_omitted`.
const MAX_ALT_NAMES: usize = 64;
/// Characters kept of any one text before "…".
const MAX_CHARS: usize = 256;
/// id-ce-subjectAltName, 2.5.29.17.
const SUBJECT_ALT_NAME: [u8; 3] = [0x55, 0x1d, 0x11];
/// Context tags of the fields read here (RFC 5280 4.1 and 4.2.1.6).
const VERSION: u8 = 0xa0;
const ISSUER_UNIQUE_ID: u8 = 0x81;
const SUBJECT_UNIQUE_ID: u8 = 0x82;
const EXTENSIONS: u8 = 0xa3;
const DNS_NAME: u8 = 0x82;
const IP_ADDRESS: u8 = 0x87;

/// A server certificate as `--diagnose` shows it. Texts are decoded but not escaped: print them
/// through [`CertSummary::subject_text`] or the reporter's escaping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSummary {
    /// The subject's attributes in certificate order, e.g. `(CommonName, "db.example.com")`.
    pub subject: Vec<(AttrName, String)>,
    /// The issuer's attributes in certificate order.
    pub issuer: Vec<(AttrName, String)>,
    /// Start of the validity period.
    pub not_before: SystemTime,
    /// End of the validity period.
    pub not_after: SystemTime,
    /// dNSName entries of the subjectAltName extension, in order.
    pub dns_names: Vec<String>,
    /// iPAddress entries of the subjectAltName extension, in order.
    pub ip_addresses: Vec<IpAddr>,
    /// DNS names and addresses past the first [`MAX_ALT_NAMES`], counted but not kept, so a
    /// report can say the list is incomplete.
    pub names_omitted: usize,
    /// Subject and issuer are byte-equal Names (no signature is checked).
    pub self_signed: bool,
}

/// The type of a Name attribute: the common ones by name, others by dotted OID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrName {
    CommonName,
    Organization,
    OrganizationalUnit,
    Country,
    Locality,
    State,
    /// Any other type, as its dotted OID ("1.2.840.113549.1.9.1").
    Other(String),
}

/// Why a certificate could not be summarised. Data only: fields are named as RFC 5280 names
/// them, and no byte of the input is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum X509Error {
    /// More than [`MAX_DER_BYTES`].
    TooLarge,
    /// A length runs past the end of its input.
    Truncated,
    /// BER's indefinite length (0x80), never valid DER.
    IndefiniteLength,
    /// A length that is not minimal or needs more than three octets.
    BadLength,
    /// A tag number of 31 or more, which no field read here uses.
    HighTagNumber,
    /// The named field is missing or carries another type.
    Unexpected(&'static str),
    /// Bytes after the last field of the named structure.
    TrailingBytes(&'static str),
    /// The named time is not UTCTime or GeneralizedTime as RFC 5280 allows, or no real date.
    BadTime(&'static str),
    /// A text in the named field is not valid in its declared string type.
    BadString(&'static str),
    /// An OBJECT IDENTIFIER is empty, unterminated, padded or too long.
    BadOid,
    /// An iPAddress alternative name is neither 4 nor 16 bytes.
    BadAddress,
    /// Two subjectAltName extensions (RFC 5280 4.2 allows one).
    DuplicateExtension,
}

impl fmt::Display for X509Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            X509Error::TooLarge => write!(f, "the certificate is over {MAX_DER_BYTES} bytes"),
            X509Error::Truncated => write!(f, "the certificate is cut short"),
            X509Error::IndefiniteLength => write!(f, "the certificate uses BER lengths, not DER"),
            X509Error::BadLength => write!(f, "the certificate has a non-DER length"),
            X509Error::HighTagNumber => write!(f, "the certificate has an unexpected tag"),
            X509Error::Unexpected(field) => write!(f, "the certificate's {field} is malformed"),
            X509Error::TrailingBytes(field) => {
                write!(f, "extra bytes after the certificate's {field}")
            }
            X509Error::BadTime(field) => write!(f, "the certificate's {field} is not a valid time"),
            X509Error::BadString(field) => write!(f, "the certificate's {field} has invalid text"),
            X509Error::BadOid => write!(f, "the certificate has a malformed object identifier"),
            X509Error::BadAddress => {
                write!(f, "the certificate has an IP address of a wrong length")
            }
            X509Error::DuplicateExtension => {
                write!(f, "the certificate has two subjectAltName extensions")
            }
        }
    }
}

impl std::error::Error for X509Error {}

/// Reads the summary of one DER certificate (the bytes rustls hands over as the peer's first
/// certificate). Signatures and other extensions are skipped, not checked.
pub fn summarize(der: &[u8]) -> Result<CertSummary, X509Error> {
    if der.len() > MAX_DER_BYTES {
        return Err(X509Error::TooLarge);
    }
    let mut outer = Reader::new(der);
    let mut cert = Reader::new(outer.expect(SEQUENCE, "Certificate")?);
    outer.finish("Certificate")?;
    let tbs = cert.expect(SEQUENCE, "tbsCertificate")?;
    cert.expect(SEQUENCE, "signatureAlgorithm")?;
    cert.expect(BIT_STRING, "signatureValue")?;
    cert.finish("Certificate")?;
    tbs_certificate(tbs)
}

impl CertSummary {
    /// The subject as one line, "CN=db.example.com, O=Example", in certificate order.
    pub fn subject_text(&self) -> String {
        name_text(&self.subject)
    }

    /// The issuer as one line, like [`CertSummary::subject_text`].
    pub fn issuer_text(&self) -> String {
        name_text(&self.issuer)
    }
}

/// The TBSCertificate fields in RFC 5280 order; the ones not shown are checked for their tag
/// only, so the fields after them are found where they should be.
fn tbs_certificate(bytes: &[u8]) -> Result<CertSummary, X509Error> {
    let mut tbs = Reader::new(bytes);
    if let Some(version) = tbs.optional(VERSION)? {
        let mut version = Reader::new(version);
        version.expect(INTEGER, "version")?;
        version.finish("version")?;
    }
    tbs.expect(INTEGER, "serialNumber")?;
    tbs.expect(SEQUENCE, "signature")?;
    let issuer = tbs.expect(SEQUENCE, "issuer")?;
    let (not_before, not_after) = validity(tbs.expect(SEQUENCE, "validity")?)?;
    let subject = tbs.expect(SEQUENCE, "subject")?;
    tbs.expect(SEQUENCE, "subjectPublicKeyInfo")?;
    tbs.optional(ISSUER_UNIQUE_ID)?;
    tbs.optional(SUBJECT_UNIQUE_ID)?;
    let alt = match tbs.optional(EXTENSIONS)? {
        Some(extensions) => alt_names_in(extensions)?,
        None => AltNames::default(),
    };
    tbs.finish("tbsCertificate")?;
    Ok(CertSummary {
        subject: name(subject, "subject")?,
        issuer: name(issuer, "issuer")?,
        not_before,
        not_after,
        dns_names: alt.dns_names,
        ip_addresses: alt.ip_addresses,
        names_omitted: alt.omitted,
        self_signed: subject == issuer,
    })
}

fn validity(bytes: &[u8]) -> Result<(SystemTime, SystemTime), X509Error> {
    let mut validity = Reader::new(bytes);
    let before = validity.read()?;
    let not_before = time::parse(before.tag, before.value, "validity.notBefore")?;
    let after = validity.read()?;
    let not_after = time::parse(after.tag, after.value, "validity.notAfter")?;
    validity.finish("validity")?;
    Ok((not_before, not_after))
}

/// The subject alternative names kept, and how many were not.
#[derive(Default)]
struct AltNames {
    dns_names: Vec<String>,
    ip_addresses: Vec<IpAddr>,
    omitted: usize,
}

impl AltNames {
    fn is_full(&self) -> bool {
        self.dns_names.len() + self.ip_addresses.len() >= MAX_ALT_NAMES
    }
}

/// Extensions ::= SEQUENCE OF Extension { extnID, critical BOOLEAN DEFAULT FALSE, extnValue };
/// only subjectAltName is opened.
fn alt_names_in(explicit: &[u8]) -> Result<AltNames, X509Error> {
    let mut outer = Reader::new(explicit);
    let mut extensions = Reader::new(outer.expect(SEQUENCE, "extensions")?);
    outer.finish("extensions")?;
    let mut found = None;
    while !extensions.is_empty() {
        let mut extension = Reader::new(extensions.expect(SEQUENCE, "extensions")?);
        let id = extension.expect(OID, "extnID")?;
        extension.optional(BOOLEAN)?;
        let value = extension.expect(OCTET_STRING, "extnValue")?;
        extension.finish("extensions")?;
        if id == SUBJECT_ALT_NAME {
            if found.is_some() {
                return Err(X509Error::DuplicateExtension);
            }
            found = Some(alt_names(value)?);
        }
    }
    Ok(found.unwrap_or_default())
}

/// GeneralNames ::= SEQUENCE OF GeneralName; dNSName and iPAddress are kept, other kinds
/// (e-mail, URI, directory names, ...) skipped.
fn alt_names(bytes: &[u8]) -> Result<AltNames, X509Error> {
    let mut outer = Reader::new(bytes);
    let mut names = Reader::new(outer.expect(SEQUENCE, "subjectAltName")?);
    outer.finish("subjectAltName")?;
    let mut alt = AltNames::default();
    while !names.is_empty() {
        let name = names.read()?;
        if !matches!(name.tag, DNS_NAME | IP_ADDRESS) {
            continue;
        }
        if alt.is_full() {
            alt.omitted += 1;
        } else if name.tag == DNS_NAME {
            let text = ascii(name.value).ok_or(X509Error::BadString("subjectAltName"))?;
            alt.dns_names.push(capped(text));
        } else {
            alt.ip_addresses.push(address(name.value)?);
        }
    }
    Ok(alt)
}

fn address(bytes: &[u8]) -> Result<IpAddr, X509Error> {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        return Ok(IpAddr::from(v4));
    }
    <[u8; 16]>::try_from(bytes)
        .map(IpAddr::from)
        .map_err(|_| X509Error::BadAddress)
}

#[cfg(test)]
mod tests;
