//! Batch scanning of the common case on the receive path: whole, simple client frames.

/// Where one simple frame sits in the buffer.
pub struct SimpleFrame {
    pub text: bool,
    pub key: [u8; 4],
    pub payload: std::ops::Range<usize>,
}

/// The frame at `pos` if it is simple: FIN set, no RSV bits, text or binary, masked, its length
/// minimally encoded and at most `max_size`, and complete in `buf`. Anything else, also a
/// malformed header, gives `None` and is left to the full parser, which decides what it means.
pub fn simple_frame(buf: &[u8], pos: usize, max_size: usize) -> Option<SimpleFrame> {
    let head = buf.get(pos..)?;
    let (&b0, &b1) = (head.first()?, head.get(1)?);
    if (b0 != 0x81 && b0 != 0x82) || b1 & 0x80 == 0 {
        return None;
    }
    let (length, key_at) = match b1 & 0x7F {
        126 => {
            let n = u16::from_be_bytes(head.get(2..4)?.try_into().ok()?) as u64;
            (n, 4)
        }
        127 => {
            let n = u64::from_be_bytes(head.get(2..10)?.try_into().ok()?);
            (n, 10)
        }
        n => (n as u64, 2),
    };
    let minimal = match key_at {
        4 => length >= 126,
        10 => length >= 65536 && length >> 63 == 0,
        _ => true,
    };
    if !minimal || length > max_size as u64 {
        return None;
    }
    let key: [u8; 4] = head.get(key_at..key_at + 4)?.try_into().ok()?;
    let start = pos + key_at + 4;
    let end = start.checked_add(usize::try_from(length).ok()?)?;
    if end > buf.len() {
        return None;
    }
    Some(SimpleFrame {
        text: b0 == 0x81,
        key,
        payload: start..end,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(b0: u8, payload_len: usize) -> Vec<u8> {
        let mut out = vec![b0];
        match payload_len {
            n if n < 126 => out.push(0x80 | n as u8),
            n if n < 65536 => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&[1, 2, 3, 4]);
        out.resize(out.len() + payload_len, b'x');
        out
    }

    #[test]
    fn finds_each_length_encoding() {
        for len in [0, 125, 126, 65535, 65536] {
            let buf = frame(0x82, len);
            let found = simple_frame(&buf, 0, 1 << 20).expect("simple frame");
            assert_eq!(found.payload.len(), len);
            assert_eq!(found.payload.end, buf.len());
            assert!(simple_frame(&buf[..buf.len() - 1], 0, 1 << 20).is_none() || len == 0);
        }
    }

    #[test]
    fn leaves_everything_else_to_the_parser() {
        let mut unmasked = frame(0x81, 3);
        unmasked[1] &= 0x7F;
        for buf in [
            frame(0x01, 3),
            frame(0xC1, 3),
            frame(0x89, 3),
            frame(0x83, 3),
            unmasked,
        ] {
            assert!(simple_frame(&buf, 0, 1 << 20).is_none());
        }
        assert!(simple_frame(&frame(0x82, 300), 0, 299).is_none());
        let mut not_minimal = vec![0x82, 0x80 | 126, 0, 5, 1, 2, 3, 4];
        not_minimal.extend_from_slice(b"hello");
        assert!(simple_frame(&not_minimal, 0, 1 << 20).is_none());
    }
}
