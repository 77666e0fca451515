//! What the server's own words say, read as data: a pg_hba.conf rejection's fields, the state a
//! 57P03 names, the authentication method it asks for. PostgreSQL translates these messages; the
//! English forms are stable across versions, so they are matched there and anything else is
//! shown as sent (escaped by the reporter), never guessed at.

/// A pg_hba.conf rejection (SQLSTATE 28000), as PostgreSQL words it (auth.c, ClientAuthentication).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HbaRejection {
    pub host: String,
    pub user: String,
    pub database: String,
    /// `no encryption`, `SSL encryption`, `GSS encryption` (PG 14+), `SSL on`/`SSL off` (older).
    pub encryption: Option<String>,
    /// A `reject` line matched (rather than no line at all).
    pub reject_line: bool,
}

impl HbaRejection {
    /// Reads `no pg_hba.conf entry for host "H", user "U", database "D", no encryption` or
    /// `pg_hba.conf rejects connection for host "H", user "U", database "D", SSL encryption`.
    pub fn parse(message: &str) -> Option<Self> {
        let (rest, reject_line) =
            if let Some(rest) = message.strip_prefix("no pg_hba.conf entry for ") {
                (rest, false)
            } else {
                (
                    message.strip_prefix("pg_hba.conf rejects connection for ")?,
                    true,
                )
            };
        let host = quoted(rest, "host ")?;
        let user = quoted(rest, "user ")?;
        let database = quoted(rest, "database ")?;
        let encryption = rest
            .rsplit(", ")
            .next()
            .filter(|tail| !tail.starts_with("database ") && !tail.contains('"'))
            .map(str::to_string);
        Some(Self {
            host,
            user,
            database,
            encryption,
            reject_line,
        })
    }

    /// Whether the rejected connection was encrypted with TLS.
    pub fn was_tls(&self) -> bool {
        self.encryption
            .as_deref()
            .is_some_and(|e| e.starts_with("SSL encryption") || e == "SSL on")
    }

    /// The pg_hba.conf line that would let this connection in, with the scram method.
    pub fn line_to_add(&self) -> String {
        let kind = match self.was_tls() {
            true => "hostssl",
            false => "host",
        };
        let address = match self.host.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(_)) => format!("{}/32", self.host),
            Ok(std::net::IpAddr::V6(_)) => format!("{}/128", self.host),
            Err(_) if self.host == "[local]" => {
                return format!("local {} {} scram-sha-256", self.database, self.user)
            }
            Err(_) => self.host.clone(),
        };
        format!(
            "{kind} {} {} {address} scram-sha-256",
            self.database, self.user
        )
    }
}

/// The text in quotes after `label` (PostgreSQL quotes host, user and database).
fn quoted(text: &str, label: &str) -> Option<String> {
    let start = text.find(&format!("{label}\""))? + label.len() + 1;
    let end = text[start..].find('"')?;
    Some(text[start..start + end].to_string())
}

/// What a 57P03 (cannot_connect_now) says the server is doing, from its message and detail
/// (postmaster.c's canAcceptConnections and its callers), most specific first.
pub const CANNOT_CONNECT_NOW: &[(&str, &str)] = &[
    (
        "Hot standby mode is disabled",
        "a standby with hot_standby = off: it takes no connections until promoted",
    ),
    (
        "Consistent recovery state has not been yet reached",
        "recovering, not yet consistent: a standby or a crash recovery replaying WAL",
    ),
    ("the database system is starting up", "starting up"),
    (
        "the database system is in recovery mode",
        "in crash recovery (replaying WAL after an unclean stop)",
    ),
    (
        "the database system is not yet accepting connections",
        "recovering, not yet accepting connections",
    ),
    (
        "the database system is not accepting connections",
        "not accepting connections",
    ),
    ("the database system is shutting down", "shutting down"),
];

/// The state a 57P03 names, or `None` when its text is not one of PostgreSQL's English ones.
pub fn cannot_connect_now(message: &str, detail: &str) -> Option<&'static str> {
    CANNOT_CONNECT_NOW
        .iter()
        .find(|(text, _)| detail.contains(text) || message.contains(text))
        .map(|(_, state)| *state)
}

/// An Authentication request in words: `0` is AuthenticationOk straight away (trust).
pub fn auth_method(code: u32, mechanisms: &[String]) -> String {
    match code {
        0 => "none (trust: no password asked)".to_string(),
        3 => "cleartext password".to_string(),
        5 => "MD5 password".to_string(),
        7 => "GSSAPI (Kerberos)".to_string(),
        9 => "SSPI".to_string(),
        10 => format!("SASL: {}", mechanisms.join(", ")),
        other => format!("authentication method {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hba_rejections_are_read_field_by_field() {
        let table = [
            (
                r#"no pg_hba.conf entry for host "10.0.0.7", user "app", database "shop", no encryption"#,
                Some((
                    "10.0.0.7",
                    "app",
                    "shop",
                    Some("no encryption"),
                    false,
                    "host shop app 10.0.0.7/32 scram-sha-256",
                )),
            ),
            (
                r#"pg_hba.conf rejects connection for host "127.0.0.1", user "u", database "d", SSL encryption"#,
                Some((
                    "127.0.0.1",
                    "u",
                    "d",
                    Some("SSL encryption"),
                    true,
                    "hostssl d u 127.0.0.1/32 scram-sha-256",
                )),
            ),
            (
                r#"no pg_hba.conf entry for host "::1", user "u", database "d", SSL off"#,
                Some((
                    "::1",
                    "u",
                    "d",
                    Some("SSL off"),
                    false,
                    "host d u ::1/128 scram-sha-256",
                )),
            ),
            (
                r#"no pg_hba.conf entry for host "[local]", user "u", database "d""#,
                Some(("[local]", "u", "d", None, false, "local d u scram-sha-256")),
            ),
            ("password authentication failed for user \"u\"", None),
            ("no pg_hba.conf entry for host", None),
        ];
        for (message, want) in table {
            let got = HbaRejection::parse(message).map(|r| {
                let line = r.line_to_add();
                (
                    r.host,
                    r.user,
                    r.database,
                    r.encryption,
                    r.reject_line,
                    line,
                )
            });
            let want = want.map(|(h, u, d, e, r, l)| {
                (
                    h.to_string(),
                    u.to_string(),
                    d.to_string(),
                    e.map(str::to_string),
                    r,
                    l.to_string(),
                )
            });
            assert_eq!(got, want, "{message}");
        }
    }

    #[test]
    fn a_57p03_names_its_state_from_the_detail_first() {
        let table = [
            (
                "the database system is not accepting connections",
                "Hot standby mode is disabled.",
                Some("hot_standby = off"),
            ),
            (
                "the database system is not yet accepting connections",
                "Consistent recovery state has not been yet reached.",
                Some("not yet consistent"),
            ),
            (
                "the database system is starting up",
                "",
                Some("starting up"),
            ),
            (
                "the database system is in recovery mode",
                "",
                Some("crash recovery"),
            ),
            (
                "the database system is shutting down",
                "",
                Some("shutting down"),
            ),
            ("el sistema de base de datos está iniciándose", "", None),
        ];
        for (message, detail, want) in table {
            let got = cannot_connect_now(message, detail);
            match want {
                Some(part) => assert!(got.is_some_and(|g| g.contains(part)), "{message}: {got:?}"),
                None => assert_eq!(got, None),
            }
        }
    }
}
