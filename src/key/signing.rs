//! Keys signed by their deployment: the last 16 hex digits of a key are a MAC over the
//! rest under a secret only the deployment's instances hold, so a key this deployment
//! never minted is refused from its text alone, before any store lookup.

use std::{fmt, sync::Arc};

use hmac::{Hmac, KeyInit, Mac};
use rand::{rngs::SysRng, TryRng};
use sha2::Sha256;
use subtle::{Choice, ConstantTimeEq};
use zeroize::Zeroizing;

use super::MintError;

/// Bytes of MAC a signed key ends with (16 hex digits): a forged key passes with
/// probability 2⁻⁶⁴.
pub(crate) const MAC_BYTES: usize = 8;
/// Hex digits of the MAC.
pub(crate) const MAC_HEX: usize = 2 * MAC_BYTES;

/// A deployment's secret for signing keys ([`KeyFormat::signed_with`]): 32 bytes, the
/// same on every instance, kept like any other secret (an environment variable, a
/// secret manager). Its `Debug` shows nothing of it, and it is wiped from memory when
/// dropped.
///
/// [`KeyFormat::signed_with`]: super::KeyFormat::signed_with
///
/// ```
/// use tower_api_key::key::KeySecret;
///
/// let secret = KeySecret::generate().unwrap();
/// let stored = secret.to_hex(); // keep it in your secret store
/// let again = KeySecret::from_hex(&stored).unwrap();
/// assert_eq!(again, secret);
/// assert_eq!(format!("{secret:?}"), "KeySecret(..)");
/// assert!(KeySecret::from_hex("not hex").is_err());
/// ```
#[derive(Clone)]
pub struct KeySecret(Zeroizing<[u8; 32]>);

/// The text was not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a key secret must be 64 hex digits (32 bytes)")]
pub struct InvalidSecret;

impl KeySecret {
    /// A new secret from the OS random source.
    pub fn generate() -> Result<Self, MintError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        SysRng.try_fill_bytes(&mut bytes[..]).map_err(MintError)?;
        Ok(KeySecret(bytes))
    }

    /// A secret from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        KeySecret(Zeroizing::new(bytes))
    }

    /// A secret from 64 hex digits (either case), as [`to_hex`](Self::to_hex) writes it.
    pub fn from_hex(text: &str) -> Result<Self, InvalidSecret> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        let text = text.trim().to_ascii_lowercase();
        match base16ct::lower::decode(text.as_bytes(), &mut bytes[..]) {
            Ok(decoded) if decoded.len() == 32 => Ok(KeySecret(bytes)),
            _ => Err(InvalidSecret),
        }
    }

    /// The secret as 64 lowercase hex digits, to store; wiped when dropped.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(base16ct::lower::encode_string(&self.0[..]))
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes a key of any length: this cannot fail.
        HmacSha256::new_from_slice(&self.0[..]).unwrap_or_else(|_| unreachable!())
    }
}

impl PartialEq for KeySecret {
    /// Compared in constant time.
    fn eq(&self, other: &Self) -> bool {
        self.0[..].ct_eq(&other.0[..]).into()
    }
}

impl Eq for KeySecret {}

impl fmt::Debug for KeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeySecret(..)")
    }
}

type HmacSha256 = Hmac<Sha256>;

/// The secrets of a signed format: keys are signed with the first; a key signed with
/// any of them is accepted (so a secret can be rotated: sign with the new one, keep
/// accepting the old one until its keys are gone).
#[derive(Clone)]
pub(crate) struct Signing {
    secrets: Arc<[KeySecret]>,
    /// HMAC states keyed with each secret, made once.
    macs: Arc<[HmacSha256]>,
}

impl Signing {
    pub(crate) fn new(secrets: Vec<KeySecret>) -> Self {
        let macs = secrets.iter().map(KeySecret::mac).collect();
        Signing {
            secrets: secrets.into(),
            macs,
        }
    }

    pub(crate) fn secrets(&self) -> &[KeySecret] {
        &self.secrets
    }

    /// The MAC of `body` (the key up to its last 16 digits) under the first secret.
    pub(crate) fn sign(&self, body: &[u8]) -> [u8; MAC_BYTES] {
        let mut mac = [0u8; MAC_BYTES];
        if let Some(first) = self.macs.first() {
            mac.copy_from_slice(
                &first.clone().chain_update(body).finalize().into_bytes()[..MAC_BYTES],
            );
        }
        mac
    }

    /// Whether `mac_hex` (16 lowercase hex digits) is `body`'s MAC under any secret.
    /// Every secret is tried and compared in constant time, whatever matches.
    pub(crate) fn verify(&self, body: &[u8], mac_hex: &[u8]) -> bool {
        let mut presented = [0u8; MAC_BYTES];
        // The caller checked the digits are lowercase hex; a bad one fails below.
        let decoded = base16ct::lower::decode(mac_hex, &mut presented).is_ok();
        let mut matched = Choice::from(0);
        for mac in self.macs.iter() {
            let expected = mac.clone().chain_update(body).finalize().into_bytes();
            matched |= expected[..MAC_BYTES].ct_eq(&presented);
        }
        decoded & bool::from(matched)
    }
}

impl PartialEq for Signing {
    fn eq(&self, other: &Self) -> bool {
        self.secrets == other.secrets
    }
}

impl Eq for Signing {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_with_the_first_and_accepts_any() {
        let (a, b) = (
            KeySecret::generate().unwrap(),
            KeySecret::generate().unwrap(),
        );
        let both = Signing::new(vec![a.clone(), b.clone()]);
        let body = b"pk_live_0123456789abcdef0123456789abcdef0123456789abcdef";
        let mac = base16ct::lower::encode_string(&both.sign(body));
        assert!(both.verify(body, mac.as_bytes()));
        assert!(Signing::new(vec![b.clone(), a]).verify(body, mac.as_bytes()));
        assert!(!Signing::new(vec![b]).verify(body, mac.as_bytes()));
        assert!(!both.verify(
            b"pk_live_1123456789abcdef0123456789abcdef0123456789abcdef",
            mac.as_bytes()
        ));
        assert!(!both.verify(body, b"zz23456789abcdef"));
    }

    #[test]
    fn hex_round_trips_and_rejects_the_wrong_length() {
        let secret = KeySecret::from_bytes([7; 32]);
        assert_eq!(secret.to_hex().as_str(), "07".repeat(32));
        assert_eq!(
            KeySecret::from_hex(&"07".repeat(32).to_uppercase()),
            Ok(secret)
        );
        assert_eq!(KeySecret::from_hex(&"07".repeat(31)), Err(InvalidSecret));
        assert_eq!(KeySecret::from_hex(&"07".repeat(33)), Err(InvalidSecret));
    }
}
