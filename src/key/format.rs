use std::fmt;

use super::{
    checksum::{checksum_holds, Checksum, CHECKSUM_HEX},
    signing::{Signing, MAC_HEX},
    KeyPrefix, KeySecret, PREFIX_HEX, SECRET_HEX,
};

/// Longest namespace a [`KeyFormat`] accepts.
const MAX_NAMESPACE: usize = 8;

/// Whether a key is for real traffic or for a sandbox.
///
/// The mode is part of the key text (`pk_live_…`, `pk_test_…`) and of its prefix, so
/// a handler can route test traffic to sandbox data without another lookup.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum KeyMode {
    /// Production keys: `pk_live_…`.
    Live,
    /// Test-mode keys: `pk_test_…`.
    Test,
}

impl KeyMode {
    /// The mode as it appears in a key: `"live"` or `"test"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            KeyMode::Live => "live",
            KeyMode::Test => "test",
        }
    }

    pub(crate) fn from_bytes(bytes: &[u8]) -> Option<Self> {
        match bytes {
            b"live" => Some(KeyMode::Live),
            b"test" => Some(KeyMode::Test),
            _ => None,
        }
    }
}

impl fmt::Display for KeyMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The namespace was not 1–8 lowercase ASCII letters or digits starting with a letter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a key namespace must be 1 to 8 lowercase ASCII letters or digits, starting with a letter")]
pub struct InvalidNamespace;

/// The shape of the keys a service mints and accepts: `<namespace>_<mode>_<64 hex>`.
///
/// The default namespace is `pk`. Products that want their own (`acme_live_…`) choose
/// one with [`KeyFormat::new`]; it must be 1–8 lowercase ASCII letters or digits and
/// start with a letter, so keys stay unambiguous and safe in any header or log.
///
/// ```
/// use tower_api_key::key::KeyFormat;
///
/// let format = KeyFormat::new("acme").unwrap();
/// assert_eq!(format.namespace(), "acme");
/// assert!(KeyFormat::new("Acme").is_err());
/// assert!(KeyFormat::new("a_b").is_err());
/// ```
///
/// # Signed keys
///
/// [`signed_with`](Self::signed_with) makes the last 16 of the 64 hex digits a MAC
/// (HMAC-SHA256, truncated to 64 bits) over the rest of the key under a secret of the
/// deployment: the same shape, 192 random bits instead of 256, and a key this
/// deployment did not mint — a guess, a random key, a real key with its secret part
/// changed — is not a key of this format. The layer refuses it from its text, before
/// any store lookup, so a storm of random keys never reaches the store; unknown
/// prefixes and wrong secrets take that same path, so neither timing nor answer tells
/// them apart. Give every instance the same secret, in both the layer's and key
/// management's format. Keys minted before signing was turned on are not signed and
/// are refused once it is (mint new ones first, or keep an unsigned format until they
/// are gone).
///
/// ```
/// use tower_api_key::key::{ApiKey, KeyFormat, KeyMode, KeySecret};
///
/// let secret = KeySecret::generate().unwrap();
/// let format = KeyFormat::default().signed_with(secret.clone());
/// let key = ApiKey::generate_in(&format, KeyMode::Live).unwrap();
/// assert!(ApiKey::parse(key.expose_secret(), &format).is_ok());
///
/// // Not minted under this secret: not a key of the format.
/// let random = ApiKey::generate(KeyMode::Live).unwrap();
/// assert!(ApiKey::parse(random.expose_secret(), &format).is_err());
///
/// // Rotating the secret: sign with the new one, keep accepting the old one.
/// let rotated = KeyFormat::default()
///     .signed_with(KeySecret::generate().unwrap())
///     .also_accepting(secret);
/// assert!(ApiKey::parse(key.expose_secret(), &rotated).is_ok());
/// ```
///
/// # Checksummed keys
///
/// [`checksum`](Self::checksum) makes the last 8 of the 64 hex digits the CRC-32
/// (IEEE, as zlib computes it) of the key text before them, in lowercase hex: the same
/// shape, 224 random bits. Anyone can check it, without a secret or a lookup, so a
/// secret scanner finds your keys in public code with almost no false positives, and
/// the layer refuses a mistyped or made-up key from its text (as an unknown key). A
/// scanner configures:
///
/// - pattern: `\b(pk_(?:live|test)_[0-9a-f]{56})([0-9a-f]{8})\b` (with your namespace
///   in place of `pk`);
/// - check: `crc32(group 1)`, as 8 lowercase hex digits, equals group 2
///   ([`has_valid_checksum`](super::has_valid_checksum) in Rust; `"%08x" %
///   zlib.crc32(body)` in Python).
///
/// With [`Checksum::Optional`], keys minted before checksums were turned on keep
/// working (they are looked up as before); [`Checksum::Required`] refuses them. A
/// format can be both signed and checksummed: the key ends with the MAC, then the
/// checksum over everything before it (160 random bits).
///
/// ```
/// use tower_api_key::key::{has_valid_checksum, ApiKey, Checksum, KeyFormat, KeyMode};
///
/// let format = KeyFormat::default().checksum(Checksum::Required);
/// let key = ApiKey::generate_in(&format, KeyMode::Live).unwrap();
/// assert!(has_valid_checksum(key.expose_secret()));
/// assert!(ApiKey::parse(key.expose_secret(), &format).is_ok());
///
/// // A key minted before the checksum: refused when required, kept when optional.
/// let old = ApiKey::generate(KeyMode::Live).unwrap();
/// assert!(ApiKey::parse(old.expose_secret(), &format).is_err());
/// let moving = KeyFormat::default().checksum(Checksum::Optional);
/// assert!(ApiKey::parse(old.expose_secret(), &moving).is_ok());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct KeyFormat {
    namespace: [u8; MAX_NAMESPACE],
    len: u8,
    /// The deployment's secrets, when keys are signed.
    signing: Option<Signing>,
    /// Whether keys end with a checksum.
    checksum: Checksum,
}

impl KeyFormat {
    /// A format with the given namespace.
    pub fn new(namespace: &str) -> Result<Self, InvalidNamespace> {
        let bytes = namespace.as_bytes();
        if !is_valid_namespace(bytes) {
            return Err(InvalidNamespace);
        }
        let mut buf = [0u8; MAX_NAMESPACE];
        buf[..bytes.len()].copy_from_slice(bytes);
        Ok(KeyFormat {
            namespace: buf,
            // Checked above: at most MAX_NAMESPACE bytes.
            len: bytes.len() as u8,
            signing: None,
            checksum: Checksum::None,
        })
    }

    /// Whether minted keys end with a CRC-32 checksum, and whether presented keys must.
    /// See [Checksummed keys](Self#checksummed-keys).
    pub fn checksum(mut self, checksum: Checksum) -> Self {
        self.checksum = checksum;
        self
    }

    /// Whether keys minted in this format end with a checksum.
    pub fn is_checksummed(&self) -> bool {
        self.checksum.mints()
    }

    /// Keys minted in this format are signed with `secret`, and keys are accepted
    /// only when signed with it (or with a secret given to
    /// [`also_accepting`](Self::also_accepting)). See [Signed keys](Self#signed-keys).
    pub fn signed_with(mut self, secret: KeySecret) -> Self {
        let mut secrets = vec![secret];
        secrets.extend(self.secrets().iter().cloned());
        self.signing = Some(Signing::new(secrets));
        self
    }

    /// Also accepts keys signed with `secret` (an earlier one, until its keys are
    /// revoked or expired), without minting with it. Call after
    /// [`signed_with`](Self::signed_with); on an unsigned format it signs with it.
    pub fn also_accepting(mut self, secret: KeySecret) -> Self {
        let mut secrets = self.secrets().to_vec();
        secrets.push(secret);
        self.signing = Some(Signing::new(secrets));
        self
    }

    /// Whether keys of this format are signed.
    pub fn is_signed(&self) -> bool {
        self.signing.is_some()
    }

    fn secrets(&self) -> &[KeySecret] {
        self.signing.as_ref().map_or(&[], Signing::secrets)
    }

    pub(crate) fn signing(&self) -> Option<&Signing> {
        self.signing.as_ref()
    }

    /// The namespace, e.g. `"pk"`.
    pub fn namespace(&self) -> &str {
        // Only ASCII is ever stored.
        std::str::from_utf8(&self.namespace[..self.len as usize]).unwrap_or_default()
    }

    /// Length in characters of a whole key in this format (72 for `pk`).
    pub fn key_len(&self) -> usize {
        self.header_len() + SECRET_HEX
    }

    /// Length in characters of a key's public prefix in this format (24 for `pk`).
    pub fn prefix_len(&self) -> usize {
        self.header_len() + PREFIX_HEX
    }

    /// `<namespace>_<mode>_`
    fn header_len(&self) -> usize {
        self.len as usize + 1 + 4 + 1
    }

    /// Checks the shape of `key` (and, in a signed format, its MAC) and returns its
    /// prefix and mode. Runs in time that depends only on the key's length, never on
    /// the secret's digits.
    #[inline(always)]
    pub(crate) fn split(&self, key: &[u8]) -> Option<(KeyPrefix, KeyMode)> {
        if key.len() != self.key_len() {
            return None;
        }
        let ns = self.len as usize;
        if !self.namespace_starts(key) {
            return None;
        }
        let mode = mode_and_hex(&key[ns..], SECRET_HEX)?;
        if (self.checksum.mints() || self.signing.is_some()) && !self.tail_holds(key) {
            return None;
        }
        let prefix = KeyPrefix::from_key(key, self.prefix_len());
        Some((prefix, mode))
    }

    /// The checksum and the MAC at the end of a key of the right shape, in a format
    /// that has either: out of line, so the plain format's check stays short.
    #[inline(never)]
    fn tail_holds(&self, key: &[u8]) -> bool {
        // The checksum is public: checking it first tells an attacker nothing they
        // could not compute themselves.
        let mut signed_end = key.len();
        if self.checksum.mints() {
            let (body, sum) = key.split_at(key.len() - CHECKSUM_HEX);
            if checksum_holds(body, sum) {
                signed_end = body.len();
            } else if self.checksum == Checksum::Required {
                return false;
            }
        }
        match &self.signing {
            Some(signing) => {
                let (body, mac) = key[..signed_end].split_at(signed_end - MAC_HEX);
                signing.verify(body, mac)
            }
            None => true,
        }
    }

    /// Whether `key` (at least 8 bytes) starts with the namespace: one masked compare
    /// of its first 8 bytes with the zero-padded namespace, no call to `memcmp`.
    #[inline(always)]
    fn namespace_starts(&self, key: &[u8]) -> bool {
        let Some(head) = key.first_chunk::<MAX_NAMESPACE>() else {
            return false;
        };
        let unused = 8 * (MAX_NAMESPACE - self.len as usize);
        let mask = u64::MAX >> unused;
        u64::from_le_bytes(*head) & mask == u64::from_le_bytes(self.namespace)
    }
}

impl Default for KeyFormat {
    /// The `pk` namespace.
    fn default() -> Self {
        KeyFormat {
            namespace: *b"pk\0\0\0\0\0\0",
            len: 2,
            signing: None,
            checksum: Checksum::None,
        }
    }
}

impl fmt::Debug for KeyFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyFormat")
            .field("namespace", &self.namespace())
            .field("signed", &self.is_signed())
            .field("checksum", &self.checksum)
            .finish()
    }
}

pub(crate) fn is_valid_namespace(bytes: &[u8]) -> bool {
    matches!(bytes.first(), Some(b'a'..=b'z'))
        && bytes.len() <= MAX_NAMESPACE
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Checks `_<live|test>_<hex_len lowercase hex digits>`, the part of a key or prefix
/// after its namespace, and returns the mode.
pub(crate) fn mode_and_hex(tail: &[u8], hex_len: usize) -> Option<KeyMode> {
    if tail.len() != 6 + hex_len || tail[0] != b'_' || tail[5] != b'_' {
        return None;
    }
    let mode = KeyMode::from_bytes(&tail[1..5])?;
    is_lower_hex(&tail[6..]).then_some(mode)
}

/// Lowercase hex check without early exit, so its timing does not depend on where a
/// bad digit sits.
pub(crate) fn is_lower_hex(bytes: &[u8]) -> bool {
    bytes.iter().fold(true, |ok, b| {
        ok & (b.is_ascii_digit() | (b'a'..=b'f').contains(b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_rules() {
        assert!(KeyFormat::new("pk").is_ok());
        assert!(KeyFormat::new("a").is_ok());
        assert!(KeyFormat::new("acme2026").is_ok());
        for bad in ["", "acme20261", "2pk", "Pk", "p-k", "p_k", "pk ", "ük"] {
            assert_eq!(KeyFormat::new(bad), Err(InvalidNamespace), "{bad:?}");
        }
        assert_eq!(KeyFormat::new("pk").unwrap(), KeyFormat::default());
    }

    #[test]
    fn lengths() {
        let f = KeyFormat::default();
        assert_eq!(f.key_len(), 72);
        assert_eq!(f.prefix_len(), 24);
        let g = KeyFormat::new("acme").unwrap();
        assert_eq!(g.key_len(), 74);
        assert_eq!(g.prefix_len(), 26);
    }

    #[test]
    fn split_checks_every_part() {
        let f = KeyFormat::default();
        let hex = "0123456789abcdef".repeat(4);
        let good = format!("pk_live_{hex}");
        let (prefix, mode) = f.split(good.as_bytes()).unwrap();
        assert_eq!(prefix.as_str(), "pk_live_0123456789abcdef");
        assert_eq!(mode, KeyMode::Live);
        assert_eq!(
            f.split(format!("pk_test_{hex}").as_bytes()).unwrap().1,
            KeyMode::Test
        );
        let upper = format!("pk_live_{}", hex.to_uppercase());
        for bad in [
            format!("sk_live_{hex}"),
            format!("pk_prod_{hex}"),
            format!("pk-live_{hex}"),
            format!("pk_live-{hex}"),
            format!("pk_live_{}", &hex[1..]),
            format!("pk_live_{hex}0"),
            format!("pk_live_{}g", &hex[1..]),
            upper,
        ] {
            assert!(f.split(bad.as_bytes()).is_none(), "{bad}");
        }
    }

    #[test]
    fn split_compares_the_whole_namespace_of_any_length() {
        let hex = "0123456789abcdef".repeat(4);
        for (namespace, other) in [
            ("a", "b"),
            ("pk", "pj"),
            ("acme2026", "acme2027"),
            ("acme2026", "bcme2026"),
        ] {
            let f = KeyFormat::new(namespace).unwrap();
            let (prefix, _) = f
                .split(format!("{namespace}_live_{hex}").as_bytes())
                .unwrap();
            assert_eq!(prefix.as_str(), format!("{namespace}_live_{}", &hex[..16]));
            assert!(
                f.split(format!("{other}_live_{hex}").as_bytes()).is_none(),
                "{other}"
            );
        }
    }

    #[test]
    fn checksummed_and_signed_keys_check_both() {
        use crate::key::{has_valid_checksum, ApiKey};
        let secret = KeySecret::from_bytes([9; 32]);
        let both = KeyFormat::default()
            .signed_with(secret.clone())
            .checksum(Checksum::Required);
        let key = ApiKey::generate_in(&both, KeyMode::Test).unwrap();
        let text = key.expose_secret();
        assert_eq!(text.len(), 72);
        assert!(has_valid_checksum(text));
        assert!(both.split(text.as_bytes()).is_some());
        // Signed only, or checksummed only: the other part does not hold.
        assert!(KeyFormat::default()
            .checksum(Checksum::Required)
            .split(text.as_bytes())
            .is_some());
        assert!(KeyFormat::default()
            .signed_with(secret.clone())
            .split(text.as_bytes())
            .is_none());
        // Another secret: the checksum holds, the MAC does not.
        let other = KeyFormat::default()
            .signed_with(KeySecret::from_bytes([1; 32]))
            .checksum(Checksum::Required);
        assert!(other.split(text.as_bytes()).is_none());
        // Moving a signed deployment onto checksums: its older signed keys still pass.
        let signed = KeyFormat::default().signed_with(secret.clone());
        let old = ApiKey::generate_in(&signed, KeyMode::Live).unwrap();
        let moving = signed.clone().checksum(Checksum::Optional);
        assert!(moving.split(old.expose_secret().as_bytes()).is_some());
        assert!(moving.split(text.as_bytes()).is_some());
        let required = signed.checksum(Checksum::Required);
        assert!(required.split(old.expose_secret().as_bytes()).is_none());
    }

    #[test]
    fn a_checksummed_key_with_one_digit_changed_is_not_a_key() {
        use crate::key::ApiKey;
        let format = KeyFormat::default().checksum(Checksum::Required);
        let key = ApiKey::generate_in(&format, KeyMode::Live).unwrap();
        let text = key.expose_secret();
        for at in 8..72 {
            let mut typo = text.as_bytes().to_vec();
            typo[at] = if typo[at] == b'0' { b'1' } else { b'0' };
            assert!(format.split(&typo).is_none(), "digit {at}");
        }
    }
}
