//! A minimal DER reader: one tag-length-value at a time, over a borrowed slice.
//!
//! The bytes come from a server, so the reader trusts none of them: it refuses lengths past the
//! end of the input, indefinite lengths (BER, never DER), non-minimal lengths and multi-byte tags.
//! It never recurses; a caller descends one known level at a time, so nesting is bounded by the
//! certificate's schema, not by the input.

use super::X509Error;

/// Universal tags this module reads (X.690, section 8).
pub const BOOLEAN: u8 = 0x01;
pub const INTEGER: u8 = 0x02;
pub const BIT_STRING: u8 = 0x03;
pub const OCTET_STRING: u8 = 0x04;
pub const OID: u8 = 0x06;
pub const SEQUENCE: u8 = 0x30;
pub const SET: u8 = 0x31;

/// More arcs than any OID in a certificate has; bounds the dotted text of an unknown one.
const MAX_OID_BYTES: usize = 64;

/// One element: its identifier octet and its contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    pub tag: u8,
    pub value: &'a [u8],
}

/// The unread rest of one constructed value's contents.
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next element, whatever its tag. Each call consumes at least two bytes, so a loop of
    /// `read` ends within half the input's length.
    pub fn read(&mut self) -> Result<Tlv<'a>, X509Error> {
        let (&tag, rest) = self.rest.split_first().ok_or(X509Error::Truncated)?;
        // Tag numbers of 31 and above take more octets; no field read here uses one.
        if tag & 0x1f == 0x1f {
            return Err(X509Error::HighTagNumber);
        }
        let (len, rest) = length(rest)?;
        if len > rest.len() {
            return Err(X509Error::Truncated);
        }
        let (value, rest) = rest.split_at(len);
        self.rest = rest;
        Ok(Tlv { tag, value })
    }

    /// The next element's contents, which must carry `tag`; `field` names it in the error.
    /// A missing field is `Unexpected` too: the input ended where the structure did not.
    pub fn expect(&mut self, tag: u8, field: &'static str) -> Result<&'a [u8], X509Error> {
        if self.is_empty() {
            return Err(X509Error::Unexpected(field));
        }
        match self.read()? {
            tlv if tlv.tag == tag => Ok(tlv.value),
            _ => Err(X509Error::Unexpected(field)),
        }
    }

    /// The next element's contents if it carries `tag`; otherwise nothing is consumed.
    pub fn optional(&mut self, tag: u8) -> Result<Option<&'a [u8]>, X509Error> {
        if self.rest.first() != Some(&tag) {
            return Ok(None);
        }
        self.read().map(|tlv| Some(tlv.value))
    }

    /// Ends a constructed value: DER leaves nothing after its last field.
    pub fn finish(&self, field: &'static str) -> Result<(), X509Error> {
        match self.is_empty() {
            true => Ok(()),
            false => Err(X509Error::TrailingBytes(field)),
        }
    }
}

/// A length octet sequence (X.690 8.1.3) and the bytes after it. Three length octets (16 MiB)
/// already exceed the largest input `summarize` accepts.
fn length(bytes: &[u8]) -> Result<(usize, &[u8]), X509Error> {
    let (&first, rest) = bytes.split_first().ok_or(X509Error::Truncated)?;
    let count = match first {
        0..=0x7f => return Ok((usize::from(first), rest)),
        0x80 => return Err(X509Error::IndefiniteLength),
        0x81..=0x83 => usize::from(first & 0x7f),
        _ => return Err(X509Error::BadLength),
    };
    if rest.len() < count {
        return Err(X509Error::Truncated);
    }
    let (octets, rest) = rest.split_at(count);
    let len = octets
        .iter()
        .fold(0usize, |n, &b| (n << 8) | usize::from(b));
    // DER's lengths are minimal: no leading zero octet, no long form for what fits the short.
    if octets[0] == 0 || len < 0x80 {
        return Err(X509Error::BadLength);
    }
    Ok((len, rest))
}

/// An OBJECT IDENTIFIER's contents as dotted text ("2.5.4.3"). Arcs must be minimal and fit
/// a `u64`; the whole is capped at [`MAX_OID_BYTES`].
pub fn oid_text(bytes: &[u8]) -> Result<String, X509Error> {
    if bytes.is_empty() || bytes.len() > MAX_OID_BYTES {
        return Err(X509Error::BadOid);
    }
    let mut arcs = Vec::new();
    let mut arc: u64 = 0;
    let mut fresh = true;
    for &b in bytes {
        if fresh && b == 0x80 {
            return Err(X509Error::BadOid); // a leading 0x80 pads an arc; DER forbids it
        }
        arc = arc.checked_mul(128).ok_or(X509Error::BadOid)? | u64::from(b & 0x7f);
        fresh = b & 0x80 == 0;
        if fresh {
            arcs.push(arc);
            arc = 0;
        }
    }
    if !fresh {
        return Err(X509Error::BadOid); // the last arc's final octet is missing
    }
    Ok(dotted(&arcs))
}

/// The first subidentifier packs two arcs (X.690 8.19.4): 40 × first + second.
fn dotted(arcs: &[u64]) -> String {
    let first = arcs[0].min(80) / 40;
    let mut text = format!("{first}.{}", arcs[0] - first * 40);
    for arc in &arcs[1..] {
        text.push_str(&format!(".{arc}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first(bytes: &[u8]) -> Result<Tlv<'_>, X509Error> {
        Reader::new(bytes).read()
    }

    #[test]
    fn reads_short_and_long_lengths() {
        assert_eq!(first(&[0x04, 0x01, 0xaa]).unwrap().value, [0xaa]);
        let mut long = vec![0x04, 0x81, 0x80];
        long.extend([0u8; 0x80]);
        assert_eq!(first(&long).unwrap().value.len(), 0x80);
    }

    #[test]
    fn refuses_hostile_lengths() {
        let table: [(&[u8], X509Error); 7] = [
            (&[], X509Error::Truncated),
            (&[0x30], X509Error::Truncated),
            (&[0x30, 0x05, 0x00], X509Error::Truncated),
            (&[0x30, 0x80, 0x00, 0x00], X509Error::IndefiniteLength),
            (&[0x30, 0x81, 0x05, 0, 0, 0, 0, 0], X509Error::BadLength),
            (&[0x30, 0x82, 0x00, 0x80], X509Error::BadLength),
            (&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff], X509Error::BadLength),
        ];
        for (bytes, want) in table {
            assert_eq!(first(bytes), Err(want), "{bytes:02x?}");
        }
        assert_eq!(first(&[0x1f, 0x01, 0x00]), Err(X509Error::HighTagNumber));
    }

    #[test]
    fn dots_object_identifiers() {
        let table: [(&[u8], &str); 4] = [
            (&[0x55, 0x04, 0x03], "2.5.4.3"),
            (&[0x55, 0x1d, 0x11], "2.5.29.17"),
            (
                &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01],
                "1.2.840.113549.1.9.1",
            ),
            (&[0x88, 0x37, 0x01], "2.999.1"),
        ];
        for (bytes, want) in table {
            assert_eq!(oid_text(bytes).as_deref(), Ok(want));
        }
    }

    #[test]
    fn refuses_malformed_object_identifiers() {
        let long = [0x81u8; 65];
        let overflow = [
            0xffu8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
        ];
        for bytes in [&[][..], &[0x55, 0x84], &[0x80, 0x01], &long, &overflow] {
            assert_eq!(oid_text(bytes), Err(X509Error::BadOid), "{bytes:02x?}");
        }
    }
}
