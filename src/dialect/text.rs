//! Small text helpers the dialects share: percent- and form-decoding, query splitting.

/// `%XX` decoding; `None` for a malformed escape or bytes that are not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(
                u8::from_str_radix(hex, 16)
                    .ok()
                    .filter(|_| hex.bytes().all(|b| b.is_ascii_hexdigit()))?,
            );
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, then `%XX`.
pub fn form_decode(s: &str) -> Option<String> {
    percent_decode(&s.replace('+', " "))
}

/// `k=v&k2=v2` → raw pairs, split at the first `=`; a pair without `=` has `None`; empty
/// pieces (`&&`) are skipped.
pub fn query_pairs(query: &str) -> Vec<(&str, Option<&str>)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (p, None),
        })
        .collect()
}

/// libpq's sslmode names, which most drivers take as they are.
pub const SSLMODES: [&str; 6] = [
    "disable",
    "allow",
    "prefer",
    "require",
    "verify-ca",
    "verify-full",
];

/// `host:port` or `[v6]:port` of one host (split at the first ":" outside brackets).
pub fn host_port(hostport: &str) -> Result<(&str, Option<&str>), String> {
    match hostport.strip_prefix('[') {
        Some(inner) => {
            let (h, after) = inner
                .split_once(']')
                .ok_or("an IPv6 address lacks its \"]\"")?;
            Ok((h, after.strip_prefix(':')))
        }
        None => Ok(match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }),
    }
}

/// Query pairs form-decoded, the last of a repeated key winning (a malformed escape is kept
/// as written, as lenient parsers do).
pub fn last_wins(query: &str) -> Vec<(String, String)> {
    let mut params: Vec<(String, String)> = Vec::new();
    for (k, v) in query_pairs(query) {
        let k = form_decode(k).unwrap_or_else(|| k.to_string());
        let v = form_decode(v.unwrap_or("")).unwrap_or_default();
        params.retain(|(p, _)| *p != k);
        params.push((k, v));
    }
    params
}

/// Whether a host is an IP address literal (for SNI and name checks).
pub fn is_ip(host: &str) -> bool {
    host.trim_matches(|c| c == '[' || c == ']')
        .parse::<std::net::IpAddr>()
        .is_ok()
}

/// A query key that is safe to name in an error: a short word.
pub fn shown_key(key: &str) -> String {
    if (1..=40).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        format!("\"{key}\"")
    } else {
        "a parameter (not shown)".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_as_forms_and_urls_do() {
        assert_eq!(percent_decode("a%40b+c").as_deref(), Some("a@b+c"));
        assert_eq!(form_decode("a%40b+c").as_deref(), Some("a@b c"));
        assert_eq!(percent_decode("bad%zz"), None);
        assert_eq!(percent_decode("bad%4"), None);
        assert_eq!(percent_decode("%FF"), None);
        assert_eq!(
            query_pairs("a=1&&b&c=x=y"),
            vec![("a", Some("1")), ("b", None), ("c", Some("x=y"))]
        );
        assert!(is_ip("[::1]") && is_ip("10.0.0.1") && !is_ip("db"));
        assert_eq!(shown_key("pool_max_conns"), "\"pool_max_conns\"");
        assert_eq!(shown_key("pw=SECRET x"), "a parameter (not shown)");
    }
}
