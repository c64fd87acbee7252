//! The few facts of DER that telling formats apart needs: an element's length from its
//! header, and the content of a complete SEQUENCE. No allocation, no recursion.

/// The length of the DER element at the start of `bytes`, header included, from its
/// header alone (it may be longer than `bytes`).
pub fn element_len(bytes: &[u8]) -> Option<usize> {
    let (header, content) = header(bytes)?;
    header.checked_add(content)
}

/// The content of the DER SEQUENCE `bytes`, when it is one and complete.
pub fn der_content(bytes: &[u8]) -> Option<&[u8]> {
    if bytes.first() != Some(&0x30) {
        return None;
    }
    let (header, content) = header(bytes)?;
    bytes.get(header..header.checked_add(content)?)
}

/// (header length, content length) of the element at the start of `bytes`.
fn header(bytes: &[u8]) -> Option<(usize, usize)> {
    let first = *bytes.get(1)?;
    if first < 0x80 {
        return Some((2, usize::from(first)));
    }
    let count = usize::from(first & 0x7f);
    if count == 0 || count > 4 {
        return None;
    }
    let len = bytes
        .get(2..2 + count)?
        .iter()
        .fold(0usize, |n, b| (n << 8) | usize::from(*b));
    Some((2 + count, len))
}
