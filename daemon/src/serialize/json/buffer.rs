//! The two ways the writers append to the output: a fixed-size copy cut
//! back to its length ([`push_prefix`]), and formatting straight into room
//! appended for it ([`write_in_place`]). Both keep the size of each copy
//! known when compiling; the number, string, decimal and time writers and
//! the column keys all append through them.

/// Appends `bytes[..len]` by appending all of `bytes` and cutting back: a
/// copy whose size is known when compiling is a few vector moves, where a
/// short copy of a run-time length is a call into `memcpy`, and these
/// copies (keys, short strings) are much of the output.
#[inline(always)]
pub(super) fn push_prefix<const N: usize>(out: &mut Vec<u8>, bytes: &[u8; N], len: usize) {
    debug_assert!(len <= N);
    let end = out.len() + len;
    out.extend_from_slice(bytes);
    out.truncate(end);
}

/// Appends `N` bytes of room, lets `write` fill a prefix of it and keeps
/// that prefix (`write` returns its length). Formatting in place, rather
/// than in a buffer copied out afterwards, also spares the copy's wide
/// loads from waiting on the narrow stores that just wrote the bytes.
#[inline(always)]
pub(super) fn write_in_place<const N: usize>(
    out: &mut Vec<u8>,
    write: impl FnOnce(&mut [u8; N]) -> usize,
) {
    let start = out.len();
    out.extend_from_slice(&[0; N]);
    // The slice from `start` is the `N` bytes just appended.
    let room = out[start..]
        .first_chunk_mut::<N>()
        .expect("N bytes appended");
    let len = write(room);
    debug_assert!(len <= N);
    out.truncate(start + len);
}
