//! Keys that end with a public checksum: the last 8 hex digits are the CRC-32 of the
//! key text before them, so a secret scanner (or the layer) tells a key of this
//! service from a made-up or mistyped one without a lookup.

/// Bytes of checksum a checksummed key ends with (8 hex digits).
pub(crate) const CHECKSUM_BYTES: usize = 4;
/// Hex digits of the checksum.
pub(crate) const CHECKSUM_HEX: usize = 2 * CHECKSUM_BYTES;

/// Whether minted keys carry a checksum, and whether presented keys must
/// ([`KeyFormat::checksum`](super::KeyFormat::checksum)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Checksum {
    /// Keys carry no checksum (the default): all 64 hex digits are random (or end with
    /// the MAC of a [signed](super::KeyFormat#signed-keys) format).
    #[default]
    None,
    /// Minted keys end with the checksum, and a presented key whose checksum does not
    /// hold is refused from its text, before any store lookup (as an unknown key).
    Required,
    /// Minted keys end with the checksum, and keys without one (minted before it was
    /// turned on) are still looked up: the way to move a deployment onto checksums.
    /// Switch to [`Required`](Self::Required) once the old keys are gone.
    Optional,
}

impl Checksum {
    /// Whether minted keys end with a checksum.
    pub(crate) fn mints(self) -> bool {
        !matches!(self, Checksum::None)
    }
}

/// CRC-32 (IEEE 802.3, as zlib's `crc32`, Go's `hash/crc32` and Python's
/// `zlib.crc32` compute it) of `bytes`.
///
/// Computed a nibble at a time from a 16-entry table that fits one cache line, so the
/// memory it touches does not depend on the key's digits.
pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    let table = &NIBBLES.0;
    let mut crc = !0u32;
    for &byte in bytes {
        crc = table[((crc ^ u32::from(byte)) & 0xf) as usize] ^ (crc >> 4);
        crc = table[((crc ^ u32::from(byte >> 4)) & 0xf) as usize] ^ (crc >> 4);
    }
    !crc
}

/// The CRC-32 of each nibble, aligned to one 64-byte cache line.
#[repr(align(64))]
struct Nibbles([u32; 16]);

static NIBBLES: Nibbles = Nibbles(nibble_table());

const fn nibble_table() -> [u32; 16] {
    let mut table = [0u32; 16];
    let mut n = 0;
    while n < 16 {
        let mut crc = n as u32;
        let mut bit = 0;
        while bit < 4 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[n] = crc;
        n += 1;
    }
    table
}

/// The checksum digits of `body` (the key up to its last 8 digits).
pub(crate) fn checksum_hex(body: &[u8]) -> [u8; CHECKSUM_HEX] {
    let mut hex = [0u8; CHECKSUM_HEX];
    let bytes = crc32(body).to_be_bytes();
    // 8 digits for 4 bytes: the buffer is exactly long enough.
    let _ = base16ct::lower::encode(&bytes, &mut hex);
    hex
}

/// Whether a key's last 8 hex digits are the CRC-32 of the text before them.
///
/// This is what a secret scanner checks after the pattern matches: see
/// [Checksummed keys](super::KeyFormat#checksummed-keys). It says nothing of whether
/// the key exists or works.
///
/// ```
/// use tower_api_key::key::{has_valid_checksum, ApiKey, Checksum, KeyFormat, KeyMode};
///
/// let format = KeyFormat::default().checksum(Checksum::Required);
/// let key = ApiKey::generate_in(&format, KeyMode::Live).unwrap();
/// assert!(has_valid_checksum(key.expose_secret()));
/// assert!(!has_valid_checksum(&key.expose_secret().replace("pk_live", "pk_test")));
/// ```
pub fn has_valid_checksum(key: &str) -> bool {
    let key = key.as_bytes();
    if key.len() <= CHECKSUM_HEX {
        return false;
    }
    let (body, presented) = key.split_at(key.len() - CHECKSUM_HEX);
    checksum_holds(body, presented)
}

/// Whether `presented` (8 digits) is `body`'s checksum; compares every digit.
pub(crate) fn checksum_holds(body: &[u8], presented: &[u8]) -> bool {
    let expected = checksum_hex(body);
    presented.len() == CHECKSUM_HEX
        && expected
            .iter()
            .zip(presented)
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_is_the_standard_one() {
        // The catalogue's check value of CRC-32/ISO-HDLC, and zlib.crc32 in Python.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        assert_eq!(
            crc32(b"The quick brown fox jumps over the lazy dog"),
            0x414F_A339
        );
    }

    #[test]
    fn the_checksum_catches_a_changed_or_swapped_digit() {
        let body = b"pk_live_0123456789abcdef0123456789abcdef0123456789abcdef";
        let hex = checksum_hex(body);
        assert!(checksum_holds(body, &hex));
        let mut typo = *body;
        typo[20] = b'9';
        assert!(!checksum_holds(&typo, &hex));
        let mut swapped = *body;
        swapped.swap(30, 31);
        assert!(!checksum_holds(&swapped, &hex));
        assert!(!checksum_holds(body, &hex[..7]));
    }
}
