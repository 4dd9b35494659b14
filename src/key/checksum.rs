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
/// Constant in the memory it touches: each byte takes one entry of each of two
/// 16-entry tables, one cache line each, both read at every step, so which lines are
/// read never depends on the key's digits. The first 64 bytes (a `pk` key's whole
/// body) run as four independent 16-byte lanes, joined by linear maps applied with
/// masks rather than tables or branches: the same result, a quarter of the serial
/// chain.
pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    let (mut crc, rest) = match bytes.split_first_chunk::<LANES_LEN>() {
        Some((lanes, rest)) => (four_lanes(lanes), rest),
        None => (!0u32, bytes),
    };
    for &byte in rest {
        crc = step(crc, byte);
    }
    !crc
}

/// The reflected CRC-32 polynomial.
const POLY: u32 = 0xEDB8_8320;
/// Bytes of one lane.
const LANE: usize = 16;
/// Bytes the lanes take together.
const LANES_LEN: usize = 4 * LANE;

/// One byte into the register: `(crc >> 8) ^ T[(crc ^ byte) & 0xff]`, with the
/// 256-entry table split by linearity into a low-nibble and a high-nibble part.
#[inline(always)]
fn step(crc: u32, byte: u8) -> u32 {
    let x = crc ^ u32::from(byte);
    (crc >> 8) ^ TABLES.low[(x & 0xf) as usize] ^ TABLES.high[((x >> 4) & 0xf) as usize]
}

/// The register after the 64 bytes `lanes`, from the initial `!0`: lane 0 from
/// `!0`, the others from 0, each moved past the lanes after it and added (CRC is
/// linear over GF(2)).
fn four_lanes(lanes: &[u8; LANES_LEN]) -> u32 {
    let mut r = [!0u32, 0, 0, 0];
    for i in 0..LANE {
        for (lane, crc) in r.iter_mut().enumerate() {
            *crc = step(*crc, lanes[lane * LANE + i]);
        }
    }
    apply(&ADVANCE[0], r[0]) ^ apply(&ADVANCE[1], r[1]) ^ apply(&ADVANCE[2], r[2]) ^ r[3]
}

/// `state` moved past as many zero bytes as `columns` was made for: the XOR of the
/// columns of its set bits, selected with masks.
#[inline(always)]
fn apply(columns: &[u32; 32], state: u32) -> u32 {
    columns.iter().enumerate().fold(0, |acc, (bit, column)| {
        acc ^ (column & 0u32.wrapping_sub((state >> bit) & 1))
    })
}

/// The two 16-entry halves of the byte table, each one 64-byte cache line.
#[repr(C, align(64))]
struct Tables {
    low: [u32; 16],
    high: [u32; 16],
}

static TABLES: Tables = Tables {
    low: half_table(0),
    high: half_table(4),
};

/// The byte table's entries for the nibble `n << shift` (`shift` 0 or 4).
const fn half_table(shift: u32) -> [u32; 16] {
    let mut table = [0u32; 16];
    let mut n = 0;
    while n < 16 {
        table[n] = byte_entry((n as u32) << shift);
        n += 1;
    }
    table
}

/// The standard table's entry for `x`: eight bit steps.
const fn byte_entry(x: u32) -> u32 {
    let mut crc = x;
    let mut bit = 0;
    while bit < 8 {
        crc = if crc & 1 == 1 {
            (crc >> 1) ^ POLY
        } else {
            crc >> 1
        };
        bit += 1;
    }
    crc
}

/// Moving a register past 48, 32 and 16 zero bytes, as the images of its 32 bits.
static ADVANCE: [[u32; 32]; 3] = [advance(3 * LANE), advance(2 * LANE), advance(LANE)];

const fn advance(bytes: usize) -> [u32; 32] {
    let mut columns = [0u32; 32];
    let mut bit = 0;
    while bit < 32 {
        let mut crc = 1u32 << bit;
        let mut n = 0;
        while n < bytes {
            crc = (crc >> 8) ^ byte_entry(crc & 0xff);
            n += 1;
        }
        columns[bit] = crc;
        bit += 1;
    }
    columns
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

    /// The textbook bit-at-a-time CRC-32.
    fn bitwise(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &byte in bytes {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ POLY
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn lanes_and_tables_agree_with_the_bitwise_crc_at_every_length() {
        let mut x = 0x9E37_79B9u32;
        let bytes: Vec<u8> = (0..200)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        for len in 0..bytes.len() {
            assert_eq!(crc32(&bytes[..len]), bitwise(&bytes[..len]), "length {len}");
        }
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
