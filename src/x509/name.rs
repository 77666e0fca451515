//! Distinguished Names: their attributes, the string types a certificate may use for them, and
//! the one-line text `--diagnose` prints, escaped so a server's text cannot forge a line.

use super::der::{self, Reader, Tlv, OID, SEQUENCE, SET};
use super::{AttrName, X509Error, MAX_CHARS};

/// Name attributes kept per Name; a real one has a handful.
const MAX_ATTRIBUTES: usize = 32;

impl AttrName {
    /// The label RFC 4514 uses ("CN"), or the dotted OID for other types.
    pub fn label(&self) -> &str {
        match self {
            AttrName::CommonName => "CN",
            AttrName::Organization => "O",
            AttrName::OrganizationalUnit => "OU",
            AttrName::Country => "C",
            AttrName::Locality => "L",
            AttrName::State => "ST",
            AttrName::Other(oid) => oid,
        }
    }

    fn from_oid(oid: &[u8]) -> Result<AttrName, X509Error> {
        Ok(match oid {
            [0x55, 0x04, 0x03] => AttrName::CommonName,
            [0x55, 0x04, 0x06] => AttrName::Country,
            [0x55, 0x04, 0x07] => AttrName::Locality,
            [0x55, 0x04, 0x08] => AttrName::State,
            [0x55, 0x04, 0x0a] => AttrName::Organization,
            [0x55, 0x04, 0x0b] => AttrName::OrganizationalUnit,
            _ => AttrName::Other(der::oid_text(oid)?),
        })
    }
}

/// Name ::= SEQUENCE OF RelativeDistinguishedName (a non-empty SET OF AttributeTypeAndValue),
/// flattened in order; attributes past [`MAX_ATTRIBUTES`] are checked but not kept.
pub(super) fn name(
    bytes: &[u8],
    field: &'static str,
) -> Result<Vec<(AttrName, String)>, X509Error> {
    let mut rdns = Reader::new(bytes);
    let mut attributes = Vec::new();
    while !rdns.is_empty() {
        let mut rdn = Reader::new(rdns.expect(SET, field)?);
        loop {
            let attribute = attribute(rdn.expect(SEQUENCE, field)?, field)?;
            if attributes.len() < MAX_ATTRIBUTES {
                attributes.push(attribute);
            }
            if rdn.is_empty() {
                break;
            }
        }
    }
    Ok(attributes)
}

fn attribute(bytes: &[u8], field: &'static str) -> Result<(AttrName, String), X509Error> {
    let mut attribute = Reader::new(bytes);
    let kind = AttrName::from_oid(attribute.expect(OID, field)?)?;
    let value = attribute.read()?;
    attribute.finish(field)?;
    Ok((kind, capped(directory_string(value, field)?)))
}

/// The string types a Name uses. TeletexString is read as Latin-1, as OpenSSL does (T.61
/// proper is a shift-code set nobody uses); other types show RFC 4514's way: "#" and hex.
pub(super) fn directory_string(value: Tlv<'_>, field: &'static str) -> Result<String, X509Error> {
    let bad = X509Error::BadString(field);
    match value.tag {
        0x0c => String::from_utf8(value.value.to_vec()).map_err(|_| bad),
        0x12 | 0x13 | 0x16 | 0x1a => ascii(value.value).ok_or(bad),
        0x14 => Ok(value.value.iter().map(|&b| char::from(b)).collect()),
        0x1e => bmp(value.value).ok_or(bad),
        0x1c => universal(value.value).ok_or(bad),
        _ => Ok(value.value.iter().fold(String::from("#"), |mut hex, b| {
            hex.push_str(&format!("{b:02x}"));
            hex
        })),
    }
}

pub(super) fn ascii(bytes: &[u8]) -> Option<String> {
    bytes
        .is_ascii()
        .then(|| bytes.iter().map(|&b| char::from(b)).collect())
}

/// BMPString: UTF-16BE (UCS-2 in X.680; surrogate pairs are accepted, lone ones are not).
fn bmp(bytes: &[u8]) -> Option<String> {
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    let units = bytes
        .chunks_exact(2)
        .map(|u| u16::from_be_bytes([u[0], u[1]]));
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .ok()
}

/// UniversalString: UTF-32BE.
fn universal(bytes: &[u8]) -> Option<String> {
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    bytes
        .chunks_exact(4)
        .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
        .collect()
}

/// At most [`MAX_CHARS`] characters, then "…" to show the cut.
pub(super) fn capped(mut text: String) -> String {
    if let Some((end, _)) = text.char_indices().nth(MAX_CHARS) {
        text.truncate(end);
        text.push('…');
    }
    text
}

/// "CN=a, O=b": RFC 4514's separators and escapes, in certificate order.
pub(super) fn name_text(attributes: &[(AttrName, String)]) -> String {
    let parts: Vec<String> = attributes
        .iter()
        .map(|(kind, value)| format!("{}={}", kind.label(), escape_value(value)))
        .collect();
    parts.join(", ")
}

/// RFC 4514's escapes, so a value cannot pose as another attribute, plus visible escapes for
/// controls and invisible reordering characters, so a server's text can neither start a new
/// line nor send terminal sequences: `\x0a`, `\u{202e}`.
fn escape_value(value: &str) -> String {
    let last = value.chars().count().saturating_sub(1);
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        let edge = (i == 0 && matches!(c, ' ' | '#')) || (i == last && c == ' ');
        if edge || matches!(c, '\\' | ',' | '+' | '"' | '<' | '>' | ';' | '=') {
            out.push('\\');
            out.push(c);
        } else if invisible(c) && u32::from(c) < 0x100 {
            out.push_str(&format!("\\x{:02x}", u32::from(c)));
        } else if invisible(c) {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// C0 and C1 controls, DEL, line and paragraph separators, and bidirectional overrides (the
/// set the reporter escapes; this module is a leaf, so it keeps its own copy).
fn invisible(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}')
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}
