//! The request head of a WebSocket upgrade, split as strictly as an HTTP/1.1 parser splits it.
//!
//! The grammar is RFC 9112's, as `parse_head` in `bolt/_accel_py.py` checks it with regular
//! expressions: a token method, a target of visible characters, `HTTP/d.d`, then header lines of a
//! token name, a colon and a value of visible characters, spaces and tabs (no obs-fold, no bare CR
//! or LF, no NUL). Errors carry the HTTP status and the text the handshake answers with.

use std::ops::Range;

/// More header lines than this are refused with 431.
pub const MAX_HEADERS: usize = 200;
/// Headers kept once per process (see `parse_head` in lib.rs): at most this many, of values at most this long.
pub const SHARED_MAX: usize = 1024;
pub const SHARED_VALUE_MAX: usize = 256;

pub const MALFORMED_LINE: (u16, &str) = (400, "Malformed request line.");
pub const NOT_HTTP_11: (u16, &str) = (400, "WebSocket upgrades need HTTP/1.1.");
pub const MALFORMED_HEADER: (u16, &str) = (400, "Malformed request header.");
pub const TOO_MANY_HEADERS: (u16, &str) = (431, "Too many request headers.");

/// A request head split into ranges of the bytes it was read from.
#[derive(Debug, PartialEq, Eq)]
pub struct Head {
    pub method: Range<usize>,
    pub target: Range<usize>,
    pub version: Range<usize>,
    /// (name, value): the value without the spaces and tabs around it.
    pub fields: Vec<(Range<usize>, Range<usize>)>,
}

/// A table of the bytes `$class` accepts, indexed by byte.
macro_rules! table {
    ($class:ident) => {{
        let mut out = [false; 256];
        let mut byte = 0;
        while byte < 256 {
            out[byte] = $class(byte as u8);
            byte += 1;
        }
        out
    }};
}

const fn is_token(byte: u8) -> bool {
    byte.is_ascii_alphanumeric()
        || matches!(byte, b'-' | b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~')
}

const fn is_target(byte: u8) -> bool {
    (byte >= 0x21 && byte <= 0x7e) || byte >= 0x80
}

const fn is_value(byte: u8) -> bool {
    byte == b'\t' || (byte >= 0x20 && byte <= 0x7e) || byte >= 0x80
}

static TOKEN: [bool; 256] = table!(is_token);
static TARGET: [bool; 256] = table!(is_target);
static VALUE: [bool; 256] = table!(is_value);

/// The end of the run of `class` bytes that starts at `from`.
fn run(data: &[u8], from: usize, class: &[bool; 256]) -> usize {
    data[from..].iter().position(|&b| !class[b as usize]).map_or(data.len(), |n| from + n)
}

fn is_blank(byte: &u8) -> bool {
    *byte == b' ' || *byte == b'\t'
}

/// Where the first CRLF of `data` is.
fn find_crlf(data: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(n) = data[from..].iter().position(|&b| b == b'\r') {
        let at = from + n;
        if data.get(at + 1) == Some(&b'\n') {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// `method SP target SP HTTP/d.d`, the whole of `line`.
fn request_line(line: &[u8]) -> Option<(Range<usize>, Range<usize>, Range<usize>)> {
    let method_end = run(line, 0, &TOKEN);
    if method_end == 0 || line.get(method_end) != Some(&b' ') {
        return None;
    }
    let target_start = method_end + 1;
    let target_end = run(line, target_start, &TARGET);
    let version = &line[target_end..];
    let well_formed = target_end > target_start
        && version.len() == 9
        && version.starts_with(b" HTTP/")
        && version[6].is_ascii_digit()
        && version[7] == b'.'
        && version[8].is_ascii_digit();
    well_formed.then(|| (0..method_end, target_start..target_end, target_end + 6..line.len()))
}

/// Split a request head (everything before the blank line, without it).
pub fn parse(head: &[u8]) -> Result<Head, (u16, &'static str)> {
    let line_end = find_crlf(head).unwrap_or(head.len());
    let (method, target, version) = request_line(&head[..line_end]).ok_or(MALFORMED_LINE)?;
    if !head[version.clone()].starts_with(b"1.") {
        return Err(NOT_HTTP_11);
    }
    let mut fields = Vec::new();
    let mut at = line_end;
    // `at` is at the CRLF that ends the previous line, or at the end of the head.
    while at < head.len() {
        let name_start = at + 2;
        let name_end = run(head, name_start, &TOKEN);
        if name_end == name_start || head.get(name_end) != Some(&b':') {
            return Err(MALFORMED_HEADER);
        }
        let value = &head[name_end + 1..run(head, name_end + 1, &VALUE)];
        at = name_end + 1 + value.len();
        if at < head.len() && (head[at] != b'\r' || head.get(at + 1) != Some(&b'\n')) {
            return Err(MALFORMED_HEADER); // a byte no value may hold: a control, or a bare CR or LF
        }
        let leading = value.iter().take_while(|b| is_blank(b)).count();
        let trailing = value[leading..].iter().rev().take_while(|b| is_blank(b)).count();
        let value_start = name_end + 1 + leading;
        fields.push((name_start..name_end, value_start..at - trailing));
    }
    if fields.len() > MAX_HEADERS {
        return Err(TOO_MANY_HEADERS);
    }
    Ok(Head { method, target, version, fields })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(head: &[u8]) -> Result<(Vec<u8>, Vec<u8>, Vec<(Vec<u8>, Vec<u8>)>), (u16, &'static str)> {
        let parsed = parse(head)?;
        let fields = parsed
            .fields
            .iter()
            .map(|(name, value)| (head[name.clone()].to_vec(), head[value.clone()].to_vec()))
            .collect();
        Ok((head[parsed.method].to_vec(), head[parsed.target].to_vec(), fields))
    }

    #[test]
    fn splits_a_request() {
        let head = b"GET /ws?a=1 HTTP/1.1\r\nHost: x\r\nUpgrade:websocket \t\r\nX-Empty:\r\nX-Inner: a  b";
        let (method, target, fields) = split(head).unwrap();
        assert_eq!((method.as_slice(), target.as_slice()), (&b"GET"[..], &b"/ws?a=1"[..]));
        let expected: Vec<(&[u8], &[u8])> =
            vec![(b"Host", b"x"), (b"Upgrade", b"websocket"), (b"X-Empty", b""), (b"X-Inner", b"a  b")];
        let got: Vec<(&[u8], &[u8])> = fields.iter().map(|(n, v)| (n.as_slice(), v.as_slice())).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn refuses_malformed_request_lines() {
        for line in [
            &b""[..], b"GET", b"GET /", b"GET / HTTP/1.1 ", b"GET  / HTTP/1.1", b"GET / HTTP/11", b"G(T / HTTP/1.1",
            b" / HTTP/1.1", b"GET / HTTPS/1.1", b"GET /\x7f HTTP/1.1", b"GET / HTTP/1.1\n",
        ] {
            assert_eq!(parse(line), Err(MALFORMED_LINE), "{:?}", String::from_utf8_lossy(line));
        }
        assert_eq!(parse(b"GET / HTTP/2.0"), Err(NOT_HTTP_11));
        assert!(parse(b"GET /\x80 HTTP/1.0").is_ok()); // decoding and the version's minor digit are the caller's
    }

    #[test]
    fn refuses_malformed_header_lines() {
        for rest in [
            &b"\r\n"[..], b"\r\nHost x", b"\r\n: x", b"\r\nHo st: x", b"\r\nHost: x\ry", b"\r\nHost: x\ny",
            b"\r\nHost: \x00", b"\r\nHost: \x7f", b"\r\nHost: x\r\n", b"\r\nHost: x\r\n folded", b"\r\n\r\nHost: x",
        ] {
            let head = [&b"GET / HTTP/1.1"[..], rest].concat();
            assert_eq!(parse(&head), Err(MALFORMED_HEADER), "{:?}", String::from_utf8_lossy(rest));
        }
    }

    #[test]
    fn counts_header_lines() {
        let head = |n: usize| [&b"GET / HTTP/1.1"[..], &b"\r\nA: b".repeat(n)].concat();
        assert_eq!(parse(&head(MAX_HEADERS)).unwrap().fields.len(), MAX_HEADERS);
        assert_eq!(parse(&head(MAX_HEADERS + 1)), Err(TOO_MANY_HEADERS));
    }
}
