use std::{fmt, str::FromStr};

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
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyPrefix {
    bytes: [u8; MAX_PREFIX],
    len: u8,
}

/// The text is not a key prefix (`<namespace>_<live|test>_<16 lowercase hex>`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a key prefix: expected <namespace>_<live|test>_<16 lowercase hex digits>")]
pub struct InvalidPrefix;

impl KeyPrefix {
    /// Builds a prefix from bytes already checked by `KeyFormat::split`.
    pub(crate) fn from_validated(bytes: &[u8]) -> Self {
        let mut buf = [0u8; MAX_PREFIX];
        buf[..bytes.len()].copy_from_slice(bytes);
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

impl serde::Serialize for KeyPrefix {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for KeyPrefix {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

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
    fn serde_round_trip() {
        let p: KeyPrefix = "pk_live_0123456789abcdef".parse().unwrap();
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, "\"pk_live_0123456789abcdef\"");
        assert_eq!(serde_json::from_str::<KeyPrefix>(&json).unwrap(), p);
        assert!(serde_json::from_str::<KeyPrefix>("\"nope\"").is_err());
    }
}
