//! Certificates for TLS tests, made with rcgen: a CA, and server or client certificates it signs.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::CertificateDer;

pub struct Ca {
    pub pem: String,
    pub der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

pub fn ca(name: &str) -> Ca {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().unwrap();
    let cert = p.self_signed(&key).unwrap();
    Ca {
        pem: cert.pem(),
        der: cert.der().clone(),
        issuer: Issuer::new(p, key),
    }
}

pub struct Leaf {
    pub pem: String,
    pub der: CertificateDer<'static>,
    pub key_pem: String,
}

/// A certificate for 127.0.0.1/localhost (server) or a client, signed by `ca`, with its own key
/// unless one is given (to rotate a certificate without its key).
pub fn leaf(ca: &Ca, cn: &str, client: bool, key: Option<&str>) -> Leaf {
    leaf_for(ca, cn, client, key, &["localhost", "127.0.0.1"])
}

/// `leaf` with the names (DNS names or IP addresses) it is valid for.
pub fn leaf_for(ca: &Ca, cn: &str, client: bool, key: Option<&str>, names: &[&str]) -> Leaf {
    let mut p =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.use_authority_key_identifier_extension = true;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![if client {
        ExtendedKeyUsagePurpose::ClientAuth
    } else {
        ExtendedKeyUsagePurpose::ServerAuth
    }];
    let key = match key {
        Some(k) => KeyPair::from_pem(k).unwrap(),
        None => KeyPair::generate().unwrap(),
    };
    let cert = p.signed_by(&key, &ca.issuer).unwrap();
    Leaf {
        pem: cert.pem(),
        der: cert.der().clone(),
        key_pem: key.serialize_pem(),
    }
}
