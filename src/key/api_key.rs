use std::fmt;

use rand::{rngs::SysRng, TryRng};
use zeroize::Zeroizing;

use super::{
    checksum::{checksum_hex, CHECKSUM_BYTES},
    signing::MAC_BYTES,
    KeyFormat, KeyHash, KeyMode, KeyPrefix, SECRET_BYTES,
};

/// A whole API key, secret included.
///
/// You get one from [`ApiKey::generate`] (to show to its owner exactly once) or from
/// [`ApiKey::parse`]. It has no `Display` and no `Serialize`; its `Debug` shows only the
/// public prefix. The text is wiped from memory when the value is dropped. To read the
/// secret you must say so: [`ApiKey::expose_secret`].
#[derive(Clone)]
pub struct ApiKey {
    secret: Zeroizing<String>,
    prefix: KeyPrefix,
    mode: KeyMode,
}

/// The text is not a well-formed key in the expected format.
///
/// Deliberately says nothing about *which* part is wrong, so it can be shown to a
/// client without echoing any of the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed API key")]
pub struct KeyParseError;

/// The operating system's random source failed, so no key was minted.
#[derive(Debug, thiserror::Error)]
#[error("the OS random number generator failed: {0}")]
pub struct MintError(#[source] pub(crate) rand::rngs::SysError);

impl ApiKey {
    /// Mints a key in the default `pk` namespace from 32 bytes of the OS random source.
    pub fn generate(mode: KeyMode) -> Result<Self, MintError> {
        Self::generate_in(&KeyFormat::default(), mode)
    }

    /// Mints a key in the given format from 32 bytes of the OS random source (24, and
    /// the MAC, in a [signed](KeyFormat#signed-keys) format; 4 fewer, and the checksum,
    /// in a [checksummed](KeyFormat#checksummed-keys) one).
    pub fn generate_in(format: &KeyFormat, mode: KeyMode) -> Result<Self, MintError> {
        let mut entropy = Zeroizing::new([0u8; SECRET_BYTES]);
        SysRng.try_fill_bytes(&mut entropy[..]).map_err(MintError)?;
        let mut text = Zeroizing::new(String::with_capacity(format.key_len()));
        text.push_str(format.namespace());
        text.push('_');
        text.push_str(mode.as_str());
        text.push('_');
        // Signed: then the MAC over the text before it. Checksummed: last, the
        // checksum over the text before it.
        let mut random = SECRET_BYTES;
        if format.signing().is_some() {
            random -= MAC_BYTES;
        }
        if format.is_checksummed() {
            random -= CHECKSUM_BYTES;
        }
        // The hex goes through a wiped buffer on the stack, not a second heap string.
        let mut hex = Zeroizing::new([0u8; 2 * SECRET_BYTES]);
        let Ok(digits) = base16ct::lower::encode_str(&entropy[..random], &mut hex[..]) else {
            unreachable!("the buffer is twice the entropy's length");
        };
        text.push_str(digits);
        if let Some(signing) = format.signing() {
            let mac = signing.sign(text.as_bytes());
            let Ok(digits) = base16ct::lower::encode_str(&mac, &mut hex[..]) else {
                unreachable!("the buffer is longer than the MAC's hex");
            };
            text.push_str(digits);
        }
        if format.is_checksummed() {
            let sum = checksum_hex(text.as_bytes());
            // Lowercase hex digits: ASCII.
            text.push_str(std::str::from_utf8(&sum).unwrap_or_default());
        }
        let prefix = KeyPrefix::from_validated(&text.as_bytes()[..format.prefix_len()]);
        Ok(ApiKey {
            secret: text,
            prefix,
            mode,
        })
    }

    /// Parses key text strictly: exact length, the format's namespace, `live` or
    /// `test`, then 64 lowercase hex digits (in a signed format, ending with the MAC
    /// of one of its secrets). Anything else is a [`KeyParseError`].
    pub fn parse(text: &str, format: &KeyFormat) -> Result<Self, KeyParseError> {
        let (prefix, mode) = format.split(text.as_bytes()).ok_or(KeyParseError)?;
        Ok(ApiKey {
            secret: Zeroizing::new(text.to_owned()),
            prefix,
            mode,
        })
    }

    /// The whole key text. Show it to its owner once, at minting; never log it.
    pub fn expose_secret(&self) -> &str {
        &self.secret
    }

    /// The public prefix (first 24 characters in the `pk` namespace).
    pub fn prefix(&self) -> KeyPrefix {
        self.prefix
    }

    /// Live or test.
    pub fn mode(&self) -> KeyMode {
        self.mode
    }

    /// The SHA-256 digest to store in place of the key.
    pub fn hash(&self) -> KeyHash {
        KeyHash::of(&self.secret)
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({}…)", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_keys_have_the_documented_shape() {
        for mode in [KeyMode::Live, KeyMode::Test] {
            let key = ApiKey::generate(mode).unwrap();
            let text = key.expose_secret();
            assert_eq!(text.len(), 72);
            assert!(text.starts_with(&format!("pk_{mode}_")));
            assert!(text[8..]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
            assert_eq!(key.prefix().as_str(), &text[..24]);
            assert_eq!(key.mode(), mode);
            assert_eq!(
                ApiKey::parse(text, &KeyFormat::default()).unwrap().hash(),
                key.hash()
            );
        }
    }

    #[test]
    fn minted_keys_differ() {
        let a = ApiKey::generate(KeyMode::Live).unwrap();
        let b = ApiKey::generate(KeyMode::Live).unwrap();
        assert_ne!(a.expose_secret(), b.expose_secret());
    }

    #[test]
    fn custom_namespace() {
        let format = KeyFormat::new("acme").unwrap();
        let key = ApiKey::generate_in(&format, KeyMode::Test).unwrap();
        assert!(key.expose_secret().starts_with("acme_test_"));
        assert_eq!(key.prefix().as_str().len(), 26);
        assert!(ApiKey::parse(key.expose_secret(), &KeyFormat::default()).is_err());
        assert!(ApiKey::parse(key.expose_secret(), &format).is_ok());
    }

    #[test]
    fn debug_shows_only_the_prefix() {
        let key = ApiKey::generate(KeyMode::Live).unwrap();
        let debug = format!("{key:?}");
        assert_eq!(debug, format!("ApiKey({}…)", key.prefix()));
        assert!(!debug.contains(&key.expose_secret()[24..]));
    }
}
