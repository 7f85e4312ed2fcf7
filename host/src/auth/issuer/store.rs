//! The issuer's records and secrets: the records themselves live in the
//! state database ([`crate::state::issuer`]); this module makes the random
//! secrets and ids they hold and compares digests. Secrets are stored only
//! as SHA-256 digests (they are random 256-bit values, so a fast hash loses
//! nothing).

use sha2::{Digest, Sha256};

pub(crate) use crate::state::issuer::{Client, Family, Lifetimes, Refusal, Rotation};

pub(crate) fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A random secret: 32 bytes, hex.
pub(crate) fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    // getrandom only fails if the OS has no entropy source at all; a zeroed
    // secret would be guessable, so that is fatal.
    if let Err(err) = getrandom::fill(&mut bytes) {
        panic!("the operating system's random source failed: {err}");
    }
    hex::encode(bytes)
}

pub(crate) fn random_id() -> String {
    random_secret()[..32].to_string()
}

/// Unix seconds now.
pub(crate) fn now() -> u64 {
    super::super::keys::now_ms() / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_and_digests_compare() {
        let (a, b) = (random_secret(), random_secret());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert!(constant_time_eq(
            sha256_hex(&a).as_bytes(),
            sha256_hex(&a).as_bytes()
        ));
        assert!(!constant_time_eq(
            sha256_hex(&a).as_bytes(),
            sha256_hex(&b).as_bytes()
        ));
        assert!(!constant_time_eq(b"ab", b"abc"));
    }
}
