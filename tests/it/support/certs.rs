//! Certificates generated at test time with rcgen: a CA, a server certificate for
//! localhost/127.0.0.1, a client certificate, and an unrelated CA for negative tests.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

/// PEM files on disk.
pub struct Pki {
    pub ca: PathBuf,
    pub other_ca: PathBuf,
    pub server_cert: String,
    pub server_key: String,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

fn ca(name: &str) -> (CertificateParams, KeyPair, String) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().unwrap();
    let pem = params.self_signed(&key).unwrap().pem();
    (params, key, pem)
}

fn leaf(names: &[&str], common_name: &str, issuer: &Issuer<'_, &KeyPair>) -> (String, String) {
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn write(path: &Path, text: &str, mode: u32) -> PathBuf {
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    path.to_path_buf()
}

/// Generates everything into `dir`; the client certificate is for database user `client_user`.
pub fn make(dir: &Path, client_user: &str) -> Pki {
    let (ca_params, ca_key, ca_pem) = ca("pgwait test CA");
    let (_, _, other_pem) = ca("some other CA");
    let issuer = Issuer::from_params(&ca_params, &ca_key);
    let (server_cert, server_key) = leaf(&["localhost", "127.0.0.1"], "localhost", &issuer);
    let (client_pem, client_key_pem) = leaf(&[], client_user, &issuer);
    Pki {
        ca: write(&dir.join("ca.crt"), &ca_pem, 0o644),
        other_ca: write(&dir.join("other-ca.crt"), &other_pem, 0o644),
        server_cert,
        server_key,
        client_cert: write(&dir.join("client.crt"), &client_pem, 0o644),
        client_key: write(&dir.join("client.key"), &client_key_pem, 0o600),
    }
}
