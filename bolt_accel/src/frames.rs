//! Batch scanning of the common case on the receive path: whole, simple client frames.

/// The header of one client frame, as `decode_header` gives it.
#[derive(Debug, PartialEq, Eq)]
pub struct Header {
    /// FIN, RSV bits and opcode.
    pub b0: u8,
    /// Offset of the payload; the 4-byte masking key sits just before it.
    pub start: usize,
    pub length: u64,
}

/// Decodes the header of the client frame at `pos`: `Ok(None)` while its length is incomplete,
/// `Err(reason)` for an unmasked frame or a length that is not minimally encoded. `start` may lie
/// beyond `buf` while the masking key is incomplete.
pub fn decode_header(buf: &[u8], pos: usize) -> Result<Option<Header>, &'static str> {
    let Some(head) = buf.get(pos..) else {
        return Ok(None);
    };
    let (Some(&b0), Some(&b1)) = (head.first(), head.get(1)) else {
        return Ok(None);
    };
    if b1 & 0x80 == 0 {
        return Err("client frames must be masked");
    }
    let (length, header_len) = match b1 & 0x7F {
        126 => {
            let Some(bytes) = head.get(2..4) else {
                return Ok(None);
            };
            let n = u16::from_be_bytes([bytes[0], bytes[1]]) as u64;
            if n < 126 {
                return Err("payload length not minimally encoded");
            }
            (n, 8)
        }
        127 => {
            let Some(bytes) = head.get(2..10) else {
                return Ok(None);
            };
            let n = u64::from_be_bytes(bytes.try_into().expect("8 bytes"));
            if n >> 63 != 0 {
                return Err("payload length has the top bit set");
            }
            if n < 65536 {
                return Err("payload length not minimally encoded");
            }
            (n, 14)
        }
        n => (n as u64, 6),
    };
    Ok(Some(Header {
        b0,
        start: pos + header_len,
        length,
    }))
}

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
    let header = decode_header(buf, pos).ok()??;
    if (header.b0 != 0x81 && header.b0 != 0x82) || header.length > max_size as u64 {
        return None;
    }
    let end = header.start.checked_add(usize::try_from(header.length).ok()?)?;
    if end > buf.len() {
        return None;
    }
    let key: [u8; 4] = buf[header.start - 4..header.start].try_into().ok()?;
    Some(SimpleFrame {
        text: header.b0 == 0x81,
        key,
        payload: header.start..end,
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

    #[test]
    fn decodes_headers_and_their_errors() {
        let header = decode_header(&frame(0x82, 300), 0).unwrap().unwrap();
        assert_eq!(header, Header { b0: 0x82, start: 8, length: 300 });
        assert_eq!(decode_header(&[0x81], 0), Ok(None));
        assert_eq!(decode_header(&[0x81, 0xFE, 1], 0), Ok(None));
        assert_eq!(decode_header(&[0x81, 0x05], 0), Err("client frames must be masked"));
        assert_eq!(
            decode_header(&[0x81, 0xFE, 0, 5], 0),
            Err("payload length not minimally encoded")
        );
        let top_bit = [0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(decode_header(&top_bit, 0), Err("payload length has the top bit set"));
        assert_eq!(decode_header(&[0x81, 0x85], 0).unwrap().unwrap().start, 6);
        assert_eq!(decode_header(&[0x81, 0x85], 5), Ok(None));
    }
}
