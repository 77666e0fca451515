//! Resolving libpq's `ssl*` keywords into [`TlsParams`], with libpq's defaults and the
//! combinations libpq refuses.

use super::{expand_home, Settings};
use crate::conninfo::{
    CertMode, ConnError, Defaults, Origin, RootCert, SslMode, TlsParams, TlsVersion,
};

impl Settings {
    pub(super) fn tls(&self, defaults: &Defaults) -> Result<TlsParams, ConnError> {
        let rootcert = match self.given("sslrootcert") {
            Some(("system", _)) => Some(RootCert::System),
            Some((path, _)) => Some(RootCert::File {
                path: expand_home(path, defaults),
                explicit: true,
            }),
            None => defaults.home.as_ref().map(|h| RootCert::File {
                path: h.join(".postgresql/root.crt"),
                explicit: false,
            }),
        };
        let mode = self.sslmode(rootcert.as_ref())?;
        let direct = self
            .choice(
                "sslnegotiation",
                &[("postgres", false), ("direct", true)],
                "postgres or direct",
            )?
            .unwrap_or(false);
        if direct
            && !matches!(
                mode,
                SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull
            )
        {
            let origin = self
                .get("sslnegotiation")
                .map_or(Origin::DbnameArg, |(_, o)| o);
            let what = format!(
                "sslnegotiation=direct needs sslmode require, verify-ca or verify-full, not {}",
                mode.name()
            );
            return Err(ConnError::Conflict { origin, what });
        }
        let (min_version, max_version) = self.tls_versions()?;
        let cert_mode = self.choice(
            "sslcertmode",
            &[
                ("disable", CertMode::Disable),
                ("allow", CertMode::Allow),
                ("require", CertMode::Require),
            ],
            "disable, allow or require",
        )?;
        Ok(TlsParams {
            mode,
            rootcert,
            cert: self.file("sslcert", defaults, ".postgresql/postgresql.crt"),
            key: self.file("sslkey", defaults, ".postgresql/postgresql.key"),
            // libpq's default ~/.postgresql/root.crl; either is used only if it exists.
            crl: match self.given("sslcrl") {
                Some((path, _)) => Some(expand_home(path, defaults)),
                None => defaults
                    .home
                    .as_ref()
                    .map(|h| h.join(".postgresql/root.crl")),
            },
            // libpq sends SNI when the value starts with "1" (the default), whatever follows.
            sni: self.get("sslsni").is_none_or(|(v, _)| v.starts_with('1')),
            direct,
            min_version,
            max_version,
            crl_dir: self
                .given("sslcrldir")
                .map(|(p, _)| expand_home(p, defaults)),
            cert_mode: cert_mode.unwrap_or(CertMode::Allow),
            keylog: self
                .given("sslkeylogfile")
                .map(|(p, _)| expand_home(p, defaults)),
            system_bundle: defaults.system_roots.clone(),
        })
    }

    fn sslmode(&self, rootcert: Option<&RootCert>) -> Result<SslMode, ConnError> {
        use SslMode::*;
        let table = [
            ("disable", Disable),
            ("allow", Allow),
            ("prefer", Prefer),
            ("require", Require),
            ("verify-ca", VerifyCa),
            ("verify-full", VerifyFull),
        ];
        let explicit = self.choice(
            "sslmode",
            &table,
            "disable, allow, prefer, require, verify-ca or verify-full",
        )?;
        let system = rootcert == Some(&RootCert::System);
        // libpq: sslrootcert=system means verify-full, and weaker modes are an error.
        if let (Some(mode), true) = (explicit, system) {
            if mode != VerifyFull {
                let origin = self.get("sslmode").map_or(Origin::DbnameArg, |(_, o)| o);
                let what = format!(
                    "sslrootcert=system requires sslmode=verify-full, not {}",
                    mode.name()
                );
                return Err(ConnError::Conflict { origin, what });
            }
        }
        Ok(explicit.unwrap_or(if system { VerifyFull } else { Prefer }))
    }

    fn tls_versions(&self) -> Result<(TlsVersion, Option<TlsVersion>), ConnError> {
        let table = [
            ("TLSv1", TlsVersion::V1_0),
            ("TLSv1.1", TlsVersion::V1_1),
            ("TLSv1.2", TlsVersion::V1_2),
            ("TLSv1.3", TlsVersion::V1_3),
        ];
        let expected = "TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3";
        // libpq: an empty value is the default here (unlike sslmode's).
        let unless_empty = |keyword| match self.given(keyword) {
            Some(_) => self.choice(keyword, &table, expected),
            None => Ok(None),
        };
        let min = unless_empty("ssl_min_protocol_version")?.unwrap_or(TlsVersion::V1_2);
        let max = unless_empty("ssl_max_protocol_version")?;
        let origin = || {
            self.get("ssl_max_protocol_version")
                .map_or(Origin::DbnameArg, |(_, o)| o)
        };
        match max {
            Some(max) if max < min => Err(ConnError::Conflict {
                origin: origin(),
                what: "ssl_max_protocol_version is below ssl_min_protocol_version".into(),
            }),
            Some(max) if max < TlsVersion::V1_2 => Err(ConnError::Unsupported {
                origin: origin(),
                keyword: "ssl_max_protocol_version".into(),
                why: "pgwait speaks TLSv1.2 and TLSv1.3 only",
            }),
            _ => Ok((min, max)),
        }
    }
}
