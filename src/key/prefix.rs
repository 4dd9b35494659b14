use std::{fmt, hash::Hasher, str::FromStr};

use super::{
    format::{is_valid_namespace, mode_and_hex},
    KeyMode, PREFIX_HEX,
};

/// Longest prefix: an 8-letter namespace, `_live_` and 16 hex digits.
const MAX_PREFIX: usize = 8 + 6 + PREFIX_HEX;

/// The public part of a key: `pk_live_` and the first 16 hex digits (24 characters).
///
/// Safe to log, display, return from an API and index in a database. Stores find a key
/// record by its prefix; the secret is then checked against the stored hash. A prefix is
/// `Copy` and holds its text inline, so looking one up allocates nothing.
///
/// ```
/// use tower_api_key::key::{KeyMode, KeyPrefix};
///
/// let prefix: KeyPrefix = "pk_live_0123456789abcdef".parse().unwrap();
/// assert_eq!(prefix.mode(), KeyMode::Live);
/// assert_eq!(prefix.to_string(), "pk_live_0123456789abcdef");
/// assert!("pk_live_0123".parse::<KeyPrefix>().is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KeyPrefix {
    bytes: [u8; MAX_PREFIX],
    len: u8,
}

/// The text is not a key prefix (`<namespace>_<live|test>_<16 lowercase hex>`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a key prefix: expected <namespace>_<live|test>_<16 lowercase hex digits>")]
pub struct InvalidPrefix;

impl KeyPrefix {
    /// The first `len` bytes of `key`, a whole key already checked by
    /// `KeyFormat::split` (longer than any prefix): a fixed-size copy and mask, with
    /// no loop over the length.
    #[inline(always)]
    pub(crate) fn from_key(key: &[u8], len: usize) -> Self {
        // Bytes 14..30 as one word, of which the first `len - 14` are kept: every
        // format's prefix is longer than 14 bytes (a namespace, the mode, 16 digits).
        const TAIL: usize = MAX_PREFIX - 16;
        match key.first_chunk::<MAX_PREFIX>() {
            Some(&head) if len > TAIL && len <= MAX_PREFIX => {
                let mut bytes = head;
                let tail: &mut [u8; 16] = (&mut bytes[TAIL..]).try_into().expect("16 bytes");
                let kept = u128::from_le_bytes(*tail) & (u128::MAX >> (8 * (MAX_PREFIX - len)));
                *tail = kept.to_le_bytes();
                KeyPrefix {
                    bytes,
                    len: len as u8,
                }
            }
            _ => Self::from_validated(&key[..len]),
        }
    }

    /// Builds a prefix from bytes already checked by `KeyFormat::split`.
    pub(crate) fn from_validated(bytes: &[u8]) -> Self {
        // A fixed-size fill, with no call to `memset` and `memcpy`: this runs on every
        // verification.
        let mut buf = [0u8; MAX_PREFIX];
        for (slot, byte) in buf.iter_mut().zip(bytes) {
            *slot = *byte;
        }
        KeyPrefix {
            bytes: buf,
            len: bytes.len() as u8,
        }
    }

    /// The prefix text, e.g. `"pk_live_0123456789abcdef"`.
    pub fn as_str(&self) -> &str {
        // Only validated ASCII is ever stored.
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or_default()
    }

    /// The namespace part, e.g. `"pk"`.
    pub fn namespace(&self) -> &str {
        let s = self.as_str();
        &s[..s.len() - PREFIX_HEX - 6]
    }

    /// The mode the prefix (and so the key) belongs to.
    pub fn mode(&self) -> KeyMode {
        let s = self.as_str().as_bytes();
        let start = s.len() - PREFIX_HEX - 5;
        KeyMode::from_bytes(&s[start..start + 4]).unwrap_or(KeyMode::Live)
    }
}

impl std::hash::Hash for KeyPrefix {
    /// Hashes one word folded from the mode and the 16 random hex digits — all the
    /// entropy a prefix has — so hashing costs a single `write_u64`.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.fingerprint());
    }
}

impl KeyPrefix {
    /// 1 if `self` and `other` are the same prefix, else 0: every byte is compared,
    /// whatever they hold, and no branch depends on them.
    ///
    /// Out of line: the store's lookup and the last-use log both ask it on every
    /// verification, and share its code.
    #[inline(never)]
    pub(crate) fn same_as(&self, other: &Self) -> u64 {
        let diff = self
            .bytes
            .iter()
            .zip(&other.bytes)
            .fold(u64::from(self.len ^ other.len), |diff, (a, b)| {
                diff | u64::from(a ^ b)
            });
        is_zero(diff)
    }

    /// The mode and the 16 hex digits folded into one word. Equal prefixes have equal
    /// fingerprints; for minted keys the value is close to uniformly random.
    pub(crate) fn fingerprint(&self) -> u64 {
        let len = self.len as usize;
        let word = |at: usize| {
            let mut buf = [0u8; 8];
            buf.copy_from_slice(&self.bytes[at..at + 8]);
            u64::from_le_bytes(buf)
        };
        // Each lowercase hex digit to its value, eight at a time: `0`–`9` keep their
        // low nibble, `a`–`f` (bit 6 set) add 9 to theirs.
        let nibbles = |w: u64| {
            const LOW: u64 = 0x0f0f_0f0f_0f0f_0f0f;
            (w & LOW) + ((w >> 6) & 0x0101_0101_0101_0101) * 9
        };
        // 16 digits, 64 bits: a bijection, whatever the order of the nibbles.
        let digits = nibbles(word(len - 16)) | (nibbles(word(len - 8)) << 4);
        // The last letter of the mode: `e` (live) or `t` (test).
        digits ^ u64::from(self.bytes[len - 18])
    }
}

/// 1 if `word` is 0, else 0, by arithmetic alone.
pub(crate) fn is_zero(word: u64) -> u64 {
    ((word | word.wrapping_neg()) >> 63) ^ 1
}

/// Hashes a [`KeyPrefix`] by its fingerprint, mixed once, for maps keyed by the
/// prefixes of stored keys. No keyed hash is needed there: those prefixes come from the
/// OS random source, not from callers, so a caller cannot aim lookups at a crowded part
/// of the table.
#[derive(Default)]
pub(crate) struct PrefixHasher(u64);

impl Hasher for PrefixHasher {
    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0 ^ word).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used by `KeyPrefix`; correct for anything else all the same.
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 29)
    }
}

/// The hasher to key maps of stored prefixes with.
pub(crate) type PrefixHashing = std::hash::BuildHasherDefault<PrefixHasher>;

impl FromStr for KeyPrefix {
    type Err = InvalidPrefix;

    /// Parses a stored or displayed prefix, in any valid namespace.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        if b.len() < PREFIX_HEX + 7 || b.len() > MAX_PREFIX {
            return Err(InvalidPrefix);
        }
        let (namespace, tail) = b.split_at(b.len() - PREFIX_HEX - 6);
        if !is_valid_namespace(namespace) || mode_and_hex(tail, PREFIX_HEX).is_none() {
            return Err(InvalidPrefix);
        }
        Ok(KeyPrefix::from_validated(b))
    }
}

impl fmt::Display for KeyPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for KeyPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("KeyPrefix").field(&self.as_str()).finish()
    }
}

impl AsRef<str> for KeyPrefix {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

crate::macros::serde_via_text!(KeyPrefix);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_parts() {
        let p: KeyPrefix = "acme_test_00000000deadbeef".parse().unwrap();
        assert_eq!(p.namespace(), "acme");
        assert_eq!(p.mode(), KeyMode::Test);
        assert_eq!(p.as_str(), "acme_test_00000000deadbeef");
        for bad in [
            "",
            "pk_live_",
            "pk_live_0123456789abcde",
            "pk_live_0123456789abcdef0",
            "pk_live_0123456789ABCDEF",
            "pk_prod_0123456789abcdef",
            "PK_live_0123456789abcdef",
            "toolongns_live_0123456789abcdef",
        ] {
            assert_eq!(bad.parse::<KeyPrefix>(), Err(InvalidPrefix), "{bad}");
        }
    }

    #[test]
    fn from_key_is_the_first_len_bytes_zero_padded() {
        let key: Vec<u8> = (b'a'..=b'z').cycle().take(72).collect();
        for len in 0..=MAX_PREFIX {
            assert_eq!(
                KeyPrefix::from_key(&key, len),
                KeyPrefix::from_validated(&key[..len]),
                "{len}"
            );
        }
        // Shorter than a prefix buffer: the plain copy.
        let short = &key[..20];
        assert_eq!(
            KeyPrefix::from_key(short, 20),
            KeyPrefix::from_validated(short)
        );
    }

    #[test]
    fn fingerprint_is_the_hex_value_and_mode() {
        let a: KeyPrefix = "pk_live_0000000000000000".parse().unwrap();
        let b: KeyPrefix = "pk_live_000000000000000a".parse().unwrap();
        let c: KeyPrefix = "pk_live_0000000000000001".parse().unwrap();
        let t: KeyPrefix = "pk_test_0000000000000000".parse().unwrap();
        let all = [a, b, c, t];
        for (i, x) in all.iter().enumerate() {
            for y in &all[i + 1..] {
                assert_ne!(x.fingerprint(), y.fingerprint(), "{x} {y}");
            }
        }
        let f: KeyPrefix = "pk_live_ffffffffffffffff".parse().unwrap();
        assert_eq!(f.fingerprint() ^ u64::from(b'e'), u64::MAX);
    }

    #[test]
    fn serde_round_trip() {
        let p: KeyPrefix = "pk_live_0123456789abcdef".parse().unwrap();
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, "\"pk_live_0123456789abcdef\"");
        assert_eq!(serde_json::from_str::<KeyPrefix>(&json).unwrap(), p);
        assert!(serde_json::from_str::<KeyPrefix>("\"nope\"").is_err());
    }
}
