use std::fmt;

use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

/// The SHA-256 digest of a whole key: what a server stores instead of the key.
///
/// A key carries 256 bits from the OS random source, so a fast hash is enough: a slow
/// password hash would cost every request and protect nothing more. Equality is
/// constant-time ([`subtle::ConstantTimeEq`]), both through `==` and [`ct_eq`](ConstantTimeEq::ct_eq).
///
/// ```
/// use tower_api_key::key::KeyHash;
///
/// let stored = KeyHash::of("pk_live_…as presented…");
/// let hex = stored.to_hex();
/// assert_eq!(KeyHash::from_hex(&hex).unwrap(), stored);
/// ```
#[derive(Clone, Copy, Eq)]
pub struct KeyHash([u8; 32]);

impl KeyHash {
    /// Hashes key text exactly as presented.
    pub fn of(key: &str) -> Self {
        Self::digest(key.as_bytes())
    }

    pub(crate) fn digest(bytes: &[u8]) -> Self {
        KeyHash(Sha256::digest(bytes).into())
    }

    /// Wraps a digest read back from storage.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        KeyHash(bytes)
    }

    /// The raw digest, e.g. to store in a `BYTEA`/`BLOB` column.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The digest as 64 lowercase hex digits, e.g. to store in a text column.
    pub fn to_hex(&self) -> String {
        base16ct::lower::encode_string(&self.0)
    }

    /// Parses 64 hex digits written by [`KeyHash::to_hex`].
    pub fn from_hex(hex: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        match base16ct::lower::decode(hex, &mut out) {
            Ok(decoded) if decoded.len() == 32 => Some(KeyHash(out)),
            _ => None,
        }
    }
}

impl ConstantTimeEq for KeyHash {
    fn ct_eq(&self, other: &Self) -> Choice {
        // Compared as four words rather than 32 bytes: the same constant-time
        // guarantee, but `subtle` pays its optimisation barrier per element, and per
        // byte that was a tenth of a whole verification (measured in benches/layer.rs).
        words(&self.0).ct_eq(&words(&other.0))
    }
}

fn words(bytes: &[u8; 32]) -> [u64; 4] {
    let mut words = [0u64; 4];
    for (word, chunk) in words.iter_mut().zip(bytes.chunks_exact(8)) {
        let mut buf = [0u8; 8];
        buf.copy_from_slice(chunk);
        *word = u64::from_le_bytes(buf);
    }
    words
}

impl PartialEq for KeyHash {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyHash(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digest() {
        // SHA-256("abc")
        assert_eq!(
            KeyHash::of("abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn hex_round_trip_and_rejects() {
        let h = KeyHash::of("x");
        assert_eq!(KeyHash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(KeyHash::from_hex("00"), None);
        assert_eq!(KeyHash::from_hex(&"zz".repeat(32)), None);
        assert_eq!(KeyHash::from_hex(&"00".repeat(33)), None);
        assert_ne!(KeyHash::of("x"), KeyHash::of("y"));
        // Equality sees every byte, first to last.
        for i in 0..32 {
            let mut bytes = *h.as_bytes();
            bytes[i] ^= 0x01;
            assert_ne!(KeyHash::from_bytes(bytes), h, "byte {i}");
        }
        assert_eq!(format!("{h:?}"), "KeyHash(…)");
    }
}
