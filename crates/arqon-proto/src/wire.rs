//! A walk over the top-level protobuf fields of a frame, before prost decodes it.
//!
//! It tells a frame that ends inside a field (`Truncated`) from bytes that are not protobuf at
//! all (`Malformed`), and finds the header of a frame that was refused, so its error can still be
//! correlated. It reads lengths and skips over contents; it allocates nothing.

use crate::error::ProtocolError;

/// Largest field number protobuf allows.
const MAX_FIELD_NUMBER: u64 = (1 << 29) - 1;

fn malformed(reason: &str) -> ProtocolError {
    ProtocolError::Malformed {
        reason: reason.to_owned(),
    }
}

fn read_varint(buf: &[u8], at: &mut usize) -> Result<u64, ProtocolError> {
    let mut value: u64 = 0;
    for shift in 0..10 {
        let Some(&byte) = buf.get(*at) else {
            return Err(ProtocolError::Truncated);
        };
        *at += 1;
        if shift == 9 && byte > 1 {
            return Err(malformed("varint overflows 64 bits"));
        }
        value |= u64::from(byte & 0x7f) << (7 * shift);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(malformed("varint longer than 10 bytes"))
}

fn skip(buf: &[u8], at: &mut usize, len: u64) -> Result<(), ProtocolError> {
    let remaining = buf.len() - *at;
    match usize::try_from(len) {
        Ok(len) if len <= remaining => {
            *at += len;
            Ok(())
        }
        _ => Err(ProtocolError::Truncated),
    }
}

/// Checks that `buf` is a well-formed sequence of complete protobuf fields.
pub(crate) fn scan_fields(buf: &[u8]) -> Result<(), ProtocolError> {
    walk_fields(buf, |_, _| {})
}

/// Walks the complete top-level fields of `buf` in order, calling `visit(field number, contents)`
/// for each length-delimited one, until the end or the first broken field (whose error it returns).
pub(crate) fn walk_fields(
    buf: &[u8],
    mut visit: impl FnMut(u64, &[u8]),
) -> Result<(), ProtocolError> {
    let mut at = 0;
    while at < buf.len() {
        let key = read_varint(buf, &mut at)?;
        let field = key >> 3;
        if field == 0 || field > MAX_FIELD_NUMBER {
            return Err(malformed("invalid field number"));
        }
        match key & 0b111 {
            0 => {
                read_varint(buf, &mut at)?;
            }
            1 => skip(buf, &mut at, 8)?,
            2 => {
                let len = read_varint(buf, &mut at)?;
                let start = at;
                skip(buf, &mut at, len)?;
                visit(field, &buf[start..at]);
            }
            5 => skip(buf, &mut at, 4)?,
            _ => return Err(malformed("invalid wire type")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::scan_fields;
    use crate::error::ProtocolError;

    #[test]
    fn complete_fields_pass() {
        // field 1 varint 150; field 2 len 3 "abc"; field 3 fixed64; field 4 fixed32.
        let mut frame = vec![0x08, 0x96, 0x01, 0x12, 3, b'a', b'b', b'c', 0x19];
        frame.extend([0; 8]);
        frame.push(0x25);
        frame.extend([0; 4]);
        assert_eq!(scan_fields(&frame), Ok(()));
        for cut in 1..frame.len() {
            if [3, 8, 17].contains(&cut) {
                continue; // field boundaries
            }
            assert_eq!(
                scan_fields(&frame[..cut]),
                Err(ProtocolError::Truncated),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn bad_keys_are_malformed() {
        for frame in [&[0x00, 0x01][..], &[0x0b][..], &[0x0e][..], &[0x0f][..]] {
            assert!(matches!(
                scan_fields(frame),
                Err(ProtocolError::Malformed { .. })
            ));
        }
        let overlong = [
            0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
        ];
        assert!(matches!(
            scan_fields(&overlong),
            Err(ProtocolError::Malformed { .. })
        ));
    }
}
