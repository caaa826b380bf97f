//! Incremental UTF-8 validation whose state survives between pieces of a message.

use simdutf8::compat::Utf8Error;

/// Validates `data` with SIMD: the fast check first, the one that locates the error only if needed.
pub fn check(data: &[u8]) -> Result<(), Utf8Error> {
    if simdutf8::basic::from_utf8(data).is_ok() {
        return Ok(());
    }
    simdutf8::compat::from_utf8(data).map(|_| ())
}

/// Everything a validator remembers between feeds; small and `Copy` so a feed can run with the
/// GIL released on a copy and store the result afterwards.
#[derive(Clone, Copy, Default)]
pub struct Utf8State {
    /// Start of an incomplete character at the end of the last feed.
    pending: [u8; 4],
    pending_len: usize,
    /// Bytes fed before `pending`.
    fed: usize,
    /// Stream offset of the first invalid sequence.
    error: Option<usize>,
}

/// Length of the character that starts with `lead`, a byte `check` accepted as a lead.
fn width(lead: u8) -> usize {
    match lead {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        _ => 2,
    }
}

impl Utf8State {
    pub fn is_valid(&self) -> bool {
        self.error.is_none()
    }

    pub fn error_offset(&self) -> isize {
        self.error.map_or(-1, |offset| offset as isize)
    }

    /// The state after also seeing `data`.
    pub fn feed(mut self, data: &[u8]) -> Self {
        if self.error.is_some() {
            return self;
        }
        let mut rest = data;
        if self.pending_len > 0 {
            // Complete the held-back character first, from at most 3 new bytes.
            let have = self.pending_len;
            let take = (width(self.pending[0]) - have).min(rest.len());
            self.pending[have..have + take].copy_from_slice(&rest[..take]);
            let char_bytes = &self.pending[..have + take];
            match check(char_bytes) {
                Ok(_) => {
                    self.fed += char_bytes.len();
                    self.pending_len = 0;
                    rest = &rest[take..];
                }
                // Still a valid prefix, and `data` is used up.
                Err(e) if e.error_len().is_none() => {
                    self.pending_len = have + take;
                    return self;
                }
                Err(_) => {
                    self.error = Some(self.fed);
                    return self;
                }
            }
        }
        match check(rest) {
            Ok(_) => self.fed += rest.len(),
            Err(e) => {
                let good = e.valid_up_to();
                match e.error_len() {
                    Some(_) => self.error = Some(self.fed + good),
                    // None: the end is a truncated but so far valid character
                    // (the same contract as `std::str::Utf8Error`).
                    None => {
                        let tail = &rest[good..];
                        self.fed += good;
                        self.pending[..tail.len()].copy_from_slice(tail);
                        self.pending_len = tail.len();
                    }
                }
            }
        }
        self
    }

    /// True iff everything fed was valid and complete; a truncated end becomes the error.
    pub fn finish(&mut self) -> bool {
        if self.error.is_none() && self.pending_len > 0 {
            self.error = Some(self.fed);
        }
        self.error.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fed_in_pieces(data: &[u8], size: usize) -> Utf8State {
        data.chunks(size.max(1))
            .fold(Utf8State::default(), |state, piece| state.feed(piece))
    }

    #[test]
    fn split_anywhere_agrees_with_one_shot() {
        let samples: [&[u8]; 6] = [
            "héllo €𝄞 wörld".as_bytes(),
            b"abc\xed\xa0\x80def",
            b"\xf4\x90\x80\x80",
            b"ok\xe2\x82",
            b"\xc0\xaf",
            b"",
        ];
        for data in samples {
            let expected = std::str::from_utf8(data).err().map(|e| e.valid_up_to());
            for size in 1..=data.len().max(1) {
                let mut state = fed_in_pieces(data, size);
                state.finish();
                assert_eq!(state.error, expected, "{data:?} in pieces of {size}");
            }
        }
    }

    #[test]
    fn fails_fast_inside_a_character() {
        let state = Utf8State::default().feed(b"a\xed").feed(b"\xa0");
        assert_eq!(state.error, Some(1));
    }
}
