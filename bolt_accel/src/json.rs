//! Strict JSON validation of an object that also gives the source span of each top-level member's
//! value, so a relay can splice a client's JSON into an envelope without decoding it.
//!
//! One pass over the bytes, no allocation except the stack of open containers (only once the
//! document nests below its top-level members). The input is a `&str`: UTF-8 was checked before.
//! Error positions and reasons follow the twin in `bolt/_accel_py.py` exactly: errors inside a
//! string or number are reported at its first byte, an unexpected token at its first byte, and a
//! truncated document at its end.

/// Why and where a document was refused; `pos` is a byte offset.
#[derive(Debug, PartialEq, Eq)]
pub struct JsonError {
    pub pos: usize,
    pub reason: &'static str,
}

/// A top-level member: its key as written between the quotes (`escaped` when it holds a
/// backslash escape that must be resolved) and the byte span of its value.
#[derive(Debug, PartialEq, Eq)]
pub struct Member<'a> {
    pub key: &'a str,
    pub escaped: bool,
    pub start: usize,
    pub end: usize,
}

const END: &str = "unexpected end of input";

struct Scanner<'a> {
    s: &'a [u8],
    pos: usize,
    /// Closing bytes of the containers open below the top-level object.
    open: Vec<u8>,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn fail<T>(&self, pos: usize, reason: &'static str) -> Result<T, JsonError> {
        Err(JsonError { pos, reason })
    }

    /// The error for an unexpected byte at the current position, or for the end of input.
    fn unexpected<T>(&self, reason: &'static str) -> Result<T, JsonError> {
        let reason = if self.pos == self.s.len() {
            END
        } else {
            reason
        };
        self.fail(self.pos, reason)
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// Consumes the string that starts at the current `"`; true when it holds escapes.
    fn string(&mut self) -> Result<bool, JsonError> {
        let start = self.pos;
        self.pos += 1;
        let mut escaped = false;
        loop {
            // Bytes >= 0x80 are parts of characters already known to be valid UTF-8.
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(escaped);
                }
                Some(b'\\') if self.escape().is_some() => escaped = true,
                _ => return self.fail(start, "invalid string"), // control byte, bad escape, end
            }
        }
    }

    /// Consumes one escape at a backslash. A `\u` high surrogate must be followed at once by a
    /// `\u` low surrogate, and a low one is only valid there (orjson.loads refuses lone halves).
    fn escape(&mut self) -> Option<()> {
        let kind = *self.s.get(self.pos + 1)?;
        self.pos += 2;
        match kind {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Some(()),
            b'u' => match self.hex4()? {
                0xD800..=0xDBFF => {
                    if self.s.get(self.pos..self.pos + 2)? != b"\\u" {
                        return None;
                    }
                    self.pos += 2;
                    matches!(self.hex4()?, 0xDC00..=0xDFFF).then_some(())
                }
                0xDC00..=0xDFFF => None,
                _ => Some(()),
            },
            _ => None,
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.s.get(self.pos..self.pos + 4)?;
        let value = digits
            .iter()
            .try_fold(0, |acc, &b| Some(acc * 16 + (b as char).to_digit(16)?))?;
        self.pos += 4;
        Some(value)
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
    }

    fn is_digit_at(&self, pos: usize) -> bool {
        self.s.get(pos).is_some_and(u8::is_ascii_digit)
    }

    /// Consumes the longest prefix that is a JSON number: `-? (0 | [1-9][0-9]*) (. [0-9]+)?
    /// ([eE] [+-]? [0-9]+)?`; what follows is the next token's business (`01` is `0` then `1`).
    fn number(&mut self) -> Result<(), JsonError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let int_start = self.pos;
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return self.fail(start, "invalid number"),
        }
        let int_digits = self.pos - int_start;
        if self.peek() == Some(b'.') && self.is_digit_at(self.pos + 1) {
            self.pos += 1;
            self.digits();
        }
        let mut exponent = false;
        if let Some(b'e' | b'E') = self.peek() {
            let sign = matches!(self.s.get(self.pos + 1), Some(b'+' | b'-')) as usize;
            if self.is_digit_at(self.pos + 1 + sign) {
                self.pos += 1 + sign;
                self.digits();
                exponent = true;
            }
        }
        // orjson refuses a number that is infinite as a double. Only an exponent or more than 308
        // integer digits can get there, so only those are parsed.
        if exponent || int_digits > 308 {
            let text = std::str::from_utf8(&self.s[start..self.pos]).expect("ASCII");
            if text.parse::<f64>().is_ok_and(f64::is_infinite) {
                return self.fail(start, "number out of range");
            }
        }
        Ok(())
    }

    /// Consumes a key and its colon (whitespace skipped before the key and after the colon);
    /// gives the byte range between the quotes and whether it holds escapes.
    fn key(&mut self) -> Result<(usize, usize, bool), JsonError> {
        if self.peek() != Some(b'"') {
            return self.unexpected("expected a key");
        }
        let start = self.pos + 1;
        let escaped = self.string()?;
        let end = self.pos - 1;
        self.skip_ws();
        if self.peek() != Some(b':') {
            return self.unexpected("expected ':'");
        }
        self.pos += 1;
        self.skip_ws();
        Ok((start, end, escaped))
    }

    /// Consumes one value that starts at the current position, at nesting `depth` (the number
    /// of containers around it), and every container it opens.
    fn value(&mut self, depth: usize, max_depth: usize) -> Result<(), JsonError> {
        loop {
            match self.peek() {
                Some(open @ (b'{' | b'[')) => {
                    if depth + self.open.len() + 1 > max_depth {
                        return self.fail(self.pos, "nesting deeper than max_depth");
                    }
                    let close = if open == b'{' { b'}' } else { b']' };
                    self.pos += 1;
                    self.skip_ws();
                    if self.peek() == Some(close) {
                        self.pos += 1; // empty: a complete value
                    } else {
                        self.open.push(close);
                        if close == b'}' {
                            self.key()?;
                        }
                        continue;
                    }
                }
                Some(b'"') => {
                    self.string()?;
                }
                Some(b'-' | b'0'..=b'9') => self.number()?,
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'n') => self.literal(b"null")?,
                _ => return self.unexpected("expected a value"),
            }
            // A value is complete: close what it completes, up to the next element or the end.
            loop {
                let Some(&close) = self.open.last() else {
                    return Ok(());
                };
                self.skip_ws();
                match self.peek() {
                    Some(b',') => {
                        self.pos += 1;
                        self.skip_ws();
                        if close == b'}' {
                            self.key()?;
                        }
                        break;
                    }
                    Some(b) if b == close => {
                        self.pos += 1;
                        self.open.pop();
                    }
                    _ if close == b'}' => return self.unexpected("expected ',' or '}'"),
                    _ => return self.unexpected("expected ',' or ']'"),
                }
            }
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), JsonError> {
        if !self.s[self.pos..].starts_with(word) {
            return self.fail(self.pos, "expected a value");
        }
        self.pos += word.len();
        Ok(())
    }
}

/// Validates that `text` is exactly one JSON object (RFC 8259, strict, as orjson.loads judges it)
/// nested at most `max_depth` deep (the object itself is depth 1, each container inside one more;
/// `max_depth` >= 1), calling `member` for each top-level member in source order.
pub fn object_spans<'a>(
    text: &'a str,
    max_depth: usize,
    mut member: impl FnMut(Member<'a>),
) -> Result<(), JsonError> {
    let mut sc = Scanner {
        s: text.as_bytes(),
        pos: 0,
        open: Vec::new(),
    };
    sc.skip_ws();
    if sc.peek() != Some(b'{') {
        return sc.unexpected("the top level is not an object");
    }
    if max_depth < 1 {
        return sc.fail(sc.pos, "nesting deeper than max_depth");
    }
    sc.pos += 1;
    sc.skip_ws();
    if sc.peek() != Some(b'}') {
        loop {
            let (key_start, key_end, escaped) = sc.key()?;
            let start = sc.pos;
            sc.value(1, max_depth)?;
            member(Member {
                key: &text[key_start..key_end],
                escaped,
                start,
                end: sc.pos,
            });
            sc.skip_ws();
            match sc.peek() {
                Some(b',') => {
                    sc.pos += 1;
                    sc.skip_ws();
                }
                Some(b'}') => break,
                _ => return sc.unexpected("expected ',' or '}'"),
            }
        }
    }
    sc.pos += 1;
    sc.skip_ws();
    if sc.pos != text.len() {
        return sc.fail(sc.pos, "unexpected content after the object");
    }
    Ok(())
}

/// Resolves the escapes of a string already validated by `object_spans` into `out`.
pub fn unescape(raw: &str, out: &mut String) {
    out.clear();
    let mut rest = raw;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let kind = rest.as_bytes()[at + 1];
        rest = &rest[at + 2..];
        let c = match kind {
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let unit = |s: &str| u32::from_str_radix(&s[..4], 16).expect("validated");
                let mut code = unit(rest);
                rest = &rest[4..];
                if (0xD800..0xDC00).contains(&code) {
                    code = 0x10000 + ((code - 0xD800) << 10) + (unit(&rest[2..]) - 0xDC00);
                    rest = &rest[6..];
                }
                char::from_u32(code).expect("validated")
            }
            other => other as char, // " \ /
        };
        out.push(c);
    }
    out.push_str(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(text: &str, max_depth: usize) -> Result<Vec<(String, &str)>, JsonError> {
        let mut out = Vec::new();
        object_spans(text, max_depth, |m| {
            let mut key = String::new();
            unescape(m.key, &mut key);
            out.push((key, &text[m.start..m.end]));
        })?;
        Ok(out)
    }

    fn error(text: &str) -> (usize, &'static str) {
        let e = spans(text, 64).unwrap_err();
        (e.pos, e.reason)
    }

    #[test]
    fn gives_each_member_its_source_text() {
        let text = r#" { "a" : [1, {"b": null}] , "c\u00e9":"x\"y", "n": -0.5e+3 ,"e":{}} "#;
        let got = spans(text, 64).unwrap();
        let want = [
            ("a", r#"[1, {"b": null}]"#),
            ("cé", r#""x\"y""#),
            ("n", "-0.5e+3"),
            ("e", "{}"),
        ];
        assert_eq!(got.len(), want.len());
        for ((key, value), (wkey, wvalue)) in got.iter().zip(want) {
            assert_eq!((key.as_str(), *value), (wkey, wvalue));
        }
        assert_eq!(spans("{}", 1).unwrap(), vec![]);
    }

    #[test]
    fn resolves_surrogate_pairs_and_refuses_lone_halves() {
        assert_eq!(
            spans(r#"{"\ud834\udd1e\n":1}"#, 4).unwrap()[0].0,
            "\u{1d11e}\n"
        );
        for bad in [
            r#"{"a":"\ud800"}"#,
            r#"{"a":"\udc00"}"#,
            r#"{"a":"\ud800\u0041"}"#,
            r#"{"a":"\ud800\ud800\udc00"}"#,
        ] {
            assert_eq!(error(bad), (5, "invalid string"), "{bad}");
        }
    }

    #[test]
    fn counts_depth_from_the_top_level_object() {
        assert!(spans(r#"{"a":[[]]}"#, 3).is_ok());
        assert_eq!(
            spans(r#"{"a":[[]]}"#, 2).unwrap_err(),
            JsonError {
                pos: 6,
                reason: "nesting deeper than max_depth"
            }
        );
        assert_eq!(spans("{}", 0).unwrap_err().pos, 0);
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(5000), "]".repeat(5000));
        assert!(spans(&deep, 5001).is_ok());
    }

    #[test]
    fn refuses_what_strict_json_refuses() {
        let cases = [
            ("", 0, END),
            ("  ", 2, END),
            ("[]", 0, "the top level is not an object"),
            ("{} x", 3, "unexpected content after the object"),
            ("{}\u{c}", 2, "unexpected content after the object"),
            (r#"{"a":1,}"#, 7, "expected a key"),
            (r#"{"a" 1}"#, 5, "expected ':'"),
            (r#"{"a":01}"#, 6, "expected ',' or '}'"),
            (r#"{"a":[1 2]}"#, 8, "expected ',' or ']'"),
            (r#"{"a":[1,]}"#, 8, "expected a value"),
            (r#"{"a":NaN}"#, 5, "expected a value"),
            (r#"{"a":tru}"#, 5, "expected a value"),
            (r#"{"a":-}"#, 5, "invalid number"),
            (r#"{"a":1.}"#, 6, "expected ',' or '}'"),
            (r#"{"a":1e400}"#, 5, "number out of range"),
            (r#"{"a":"\x"}"#, 5, "invalid string"),
            ("{\"a\":\"\t\"}", 5, "invalid string"),
            (r#"{"a":"abc"#, 5, "invalid string"),
            (r#"{"a":[1"#, 7, END),
            ("{\"a\":1/**/}", 6, "expected ',' or '}'"),
        ];
        for (text, pos, reason) in cases {
            assert_eq!(error(text), (pos, reason), "{text:?}");
        }
    }

    #[test]
    fn big_numbers_that_stay_finite_are_fine() {
        assert!(spans(&format!("{{\"a\":{}}}", "9".repeat(308)), 2).is_ok());
        assert_eq!(
            error(&format!("{{\"a\":{}}}", "9".repeat(309))).1,
            "number out of range"
        );
        assert!(spans(r#"{"a":1.5e-400,"b":1.7976931348623157e308}"#, 2).is_ok());
    }
}
