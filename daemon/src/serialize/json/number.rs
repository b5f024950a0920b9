//! Integers and floats, written by lexical as arrow-json writes them, so
//! the digits match arrow-json's exactly.

use super::buffer::write_in_place;

/// Room for the longest number lexical writes, of any type.
pub(super) const NUMBER_LEN: usize = lexical_core::BUFFER_SIZE;

/// A number as lexical writes it, which is how arrow-json writes integers
/// and finite floats.
#[inline]
pub(super) fn write_number<N: lexical_core::ToLexical>(n: N, out: &mut Vec<u8>) {
    write_in_place::<NUMBER_LEN>(out, |room| lexical_core::write(n, room).len());
}

/// A float as arrow-json writes it: lexical's shortest round-trip form, and
/// `null` for NaN and the infinities, which JSON cannot express.
#[inline]
pub(super) fn write_float<N: lexical_core::ToLexical>(n: N, finite: bool, out: &mut Vec<u8>) {
    if finite {
        write_number(n, out);
    } else {
        out.extend_from_slice(b"null");
    }
}
