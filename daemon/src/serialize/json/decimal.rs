//! Decimals written as arrow displays them, digit for digit: the common
//! case (64-bit values, scales up to 19) straight into the output, any
//! other through the digits of the whole value.

use super::buffer::write_in_place;
use super::number::NUMBER_LEN;

/// A decimal column's scale, and `10^scale` when the common case applies:
/// a scale from 0 to 19, whose power of ten fits 64 bits.
#[derive(Debug, Clone, Copy)]
pub(super) struct Scale {
    scale: i8,
    divisor: Option<u64>,
}

impl Scale {
    pub(super) fn new(scale: i8) -> Self {
        let divisor = u32::try_from(scale).ok().and_then(|s| 10u64.checked_pow(s));
        Scale { scale, divisor }
    }
}

/// A decimal as arrow displays it (`write_decimal_str`): every digit of
/// the unscaled value whatever the precision, the point `scale` digits from
/// the right with `0.` and leading zeros when all digits are fractional,
/// and for a negative scale zeros appended unless the value is zero.
#[inline]
pub(super) fn write_decimal(value: i128, scale: Scale, out: &mut Vec<u8>) {
    // Most decimals fit 64 bits with a small scale: their whole and
    // fractional parts are written straight into a fixed buffer.
    let (Some(divisor), Ok(magnitude)) = (scale.divisor, u64::try_from(value.unsigned_abs()))
    else {
        return write_any_decimal(value, scale.scale, out);
    };
    // A sign, the whole part (lexical wants room for its longest number),
    // a point and up to 19 digits.
    write_in_place::<{ 1 + NUMBER_LEN + 1 + 19 }>(out, |text| {
        let mut len = 0;
        if value < 0 {
            text[0] = b'-';
            len = 1;
        }
        let digits = scale.scale as usize;
        // Dividing by a constant is a multiplication; money has 2 to 4
        // digits after the point.
        let (whole, mut fraction) = match digits {
            2 => (magnitude / 100, magnitude % 100),
            3 => (magnitude / 1_000, magnitude % 1_000),
            4 => (magnitude / 10_000, magnitude % 10_000),
            _ => (magnitude / divisor, magnitude % divisor),
        };
        len += lexical_core::write(whole, &mut text[len..]).len();
        if digits > 0 {
            text[len] = b'.';
            for slot in text[len + 1..=len + digits].iter_mut().rev() {
                *slot = b'0' + (fraction % 10) as u8;
                fraction /= 10;
            }
            len += 1 + digits;
        }
        len
    });
}

/// [`write_decimal`] for any value and scale.
fn write_any_decimal(value: i128, scale: i8, out: &mut Vec<u8>) {
    if value < 0 {
        out.push(b'-');
    }
    let magnitude = value.unsigned_abs();
    let mut scratch = [0u8; NUMBER_LEN];
    let digits: &[u8] = match u64::try_from(magnitude) {
        Ok(small) => lexical_core::write(small, &mut scratch),
        Err(_) => lexical_core::write(magnitude, &mut scratch),
    };
    match usize::try_from(scale) {
        Ok(0) => out.extend_from_slice(digits),
        Ok(scale) if digits.len() > scale => {
            let (whole, fraction) = digits.split_at(digits.len() - scale);
            out.extend_from_slice(whole);
            out.push(b'.');
            out.extend_from_slice(fraction);
        }
        Ok(scale) => {
            out.extend_from_slice(b"0.");
            out.resize(out.len() + (scale - digits.len()), b'0');
            out.extend_from_slice(digits);
        }
        Err(_) => {
            out.extend_from_slice(digits);
            if digits != b"0" {
                out.resize(out.len() + usize::from(scale.unsigned_abs()), b'0');
            }
        }
    }
}
