//! The pool's authority public key, as SV2 URLs and SRI's configs write it: base58-check of a
//! 2-byte little-endian version (1) and the 32-byte x-only secp256k1 key.

use std::fmt;
use std::str::FromStr;

use stratum_apps::key_utils::{Secp256k1PublicKey, Secp256k1SecretKey};

/// The key that signs the pool's Noise certificate; a pool that cannot prove it holds the
/// secret behind it is refused during the handshake.
#[derive(Clone, Copy)]
pub struct AuthorityKey(pub Secp256k1PublicKey);

impl AuthorityKey {
    pub fn bytes(&self) -> [u8; 32] {
        self.0.into_bytes()
    }
}

impl PartialEq for AuthorityKey {
    fn eq(&self, other: &Self) -> bool {
        self.bytes() == other.bytes()
    }
}

impl Eq for AuthorityKey {}

impl fmt::Debug for AuthorityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuthorityKey({})", self.0)
    }
}

impl fmt::Display for AuthorityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A key that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("`{text}` is not a Stratum V2 authority public key (base58-check, as the pool publishes it): {reason}")]
    Public { text: String, reason: String },
    #[error("not a Stratum V2 authority secret key (base58-check): {0}")]
    Secret(String),
}

impl FromStr for AuthorityKey {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, KeyError> {
        s.parse::<Secp256k1PublicKey>()
            .map(AuthorityKey)
            .map_err(|e| KeyError::Public { text: s.to_string(), reason: e.to_string() })
    }
}

/// An authority key pair for the embedded pool.
#[derive(Clone, Copy)]
pub struct AuthorityPair {
    pub public: AuthorityKey,
    pub secret: Secp256k1SecretKey,
}

impl AuthorityPair {
    /// A fresh pair from the system's randomness.
    pub fn generate() -> AuthorityPair {
        let secp = secp256k1::Secp256k1::new();
        let (secret, _) = secp.generate_keypair(&mut secp256k1::rand::thread_rng());
        AuthorityPair::from_secret(Secp256k1SecretKey(secret))
    }

    pub(crate) fn from_secret(secret: Secp256k1SecretKey) -> AuthorityPair {
        AuthorityPair { public: AuthorityKey(secret.into()), secret }
    }

    /// Reads a secret key written as SRI's configs write `authority_secret_key` (base58-check).
    pub(crate) fn parse_secret(text: &str) -> Result<AuthorityPair, KeyError> {
        let text = text.trim();
        text.parse::<Secp256k1SecretKey>().map(AuthorityPair::from_secret).map_err(|e| KeyError::Secret(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pair of SRI's example pool configs (sv2-apps `pool-apps/pool/config-examples/`,
    /// `authority_public_key` / `authority_secret_key`): the secret gives the public key.
    #[test]
    fn sri_example_keys_agree() {
        let public: AuthorityKey = "9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH72".parse().unwrap();
        let pair = AuthorityPair::parse_secret("mkDLTBBRxdBv998612qipDYoTK3YUrqLe8uWw7gu3iXbSrn2n").unwrap();
        assert_eq!(pair.public, public);
        assert_eq!(public.to_string(), "9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH72");
    }

    #[test]
    fn a_mistyped_key_is_refused() {
        let e = "9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH73".parse::<AuthorityKey>().unwrap_err();
        assert!(matches!(&e, KeyError::Public { .. }), "{e:?}");
        assert!(e.to_string().contains("not a Stratum V2 authority public key"), "{e}");
        assert!("".parse::<AuthorityKey>().is_err());
    }
}
