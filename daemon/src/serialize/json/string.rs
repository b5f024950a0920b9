//! JSON strings escaped exactly as serde_json escapes them (which is what
//! arrow-json calls), copying the runs that need no escape whole; short
//! strings are checked for escapes a word at a time.

use arrow_array::{GenericStringArray, OffsetSizeTrait};

use super::buffer::push_prefix;

/// What serde_json writes for each byte inside a string: 0 for the byte
/// itself, `u` for `\u00XX`, else the letter after the backslash. Only
/// ASCII bytes are escaped, so runs between them stay valid UTF-8.
static ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b'u';
        b += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

/// String `row` of `array` as [`write_string`] writes it. A short string
/// without escapes is copied together with the bytes after it in the
/// values buffer (see [`push_prefix`]).
#[inline]
pub(super) fn write_string_at<O: OffsetSizeTrait>(
    array: &GenericStringArray<O>,
    row: usize,
    out: &mut Vec<u8>,
) {
    let offsets = array.value_offsets();
    let (start, end) = (offsets[row].as_usize(), offsets[row + 1].as_usize());
    let data = array.value_data();
    let len = end - start;
    let short = data
        .get(start..)
        .and_then(|rest| rest.first_chunk::<SHORT>());
    match short {
        Some(short) if len <= SHORT && !needs_escape(short, len) => {
            out.push(b'"');
            push_prefix(out, short, len);
            out.push(b'"');
        }
        _ => write_string(&data[start..end], out),
    }
}

/// Strings up to this length are checked and copied a fixed-size block at
/// a time.
const SHORT: usize = 32;

/// Whether one of the first `len` bytes of `bytes` must be escaped (a
/// control character, `"` or `\`), eight bytes at a time.
///
/// Each test sets a byte's high bit where the byte matches, and also, by a
/// borrow, possibly in bytes above a match in the same word, never below
/// one. A flag among the first `len` bytes therefore means a match among
/// them, whatever follows the string in the buffer.
#[inline]
fn needs_escape(bytes: &[u8; SHORT], len: usize) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let flags = |word: &[u8]| {
        let word = u64::from_le_bytes(word.try_into().expect("a word is 8 bytes"));
        let zero_byte = |w: u64| w.wrapping_sub(ONES) & !w;
        let control = word.wrapping_sub(ONES * 0x20) & !word;
        let quote = zero_byte(word ^ (ONES * u64::from(b'"')));
        let backslash = zero_byte(word ^ (ONES * u64::from(b'\\')));
        (control | quote | backslash) & (ONES * 0x80)
    };
    let (whole, rest) = (len / 8, len % 8);
    let mut found = 0;
    for word in bytes.chunks_exact(8).take(whole) {
        found |= flags(word);
    }
    if rest > 0 {
        let start = whole * 8;
        found |= flags(&bytes[start..start + 8]) & ((1 << (rest * 8)) - 1);
    }
    found != 0
}

/// A JSON string exactly as serde_json's `serialize_str` writes it (which
/// is what arrow-json calls): the bytes that need no escape are copied in
/// runs.
#[inline]
pub(super) fn write_string(s: &[u8], out: &mut Vec<u8>) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        let escape = ESCAPE[usize::from(b)];
        if escape == 0 {
            continue;
        }
        out.extend_from_slice(&s[start..i]);
        if escape == b'u' {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]);
        } else {
            out.extend_from_slice(&[b'\\', escape]);
        }
        start = i + 1;
    }
    out.extend_from_slice(&s[start..]);
    out.push(b'"');
}
