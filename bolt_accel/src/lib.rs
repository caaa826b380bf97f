//! `bolt._accel`: Rust versions of the WebSocket wire helpers in `bolt/_accel_py.py`.
//!
//! Every function here has a pure-Python twin with the same signature and results;
//! `bolt/accel.py` chooses between them.

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

mod frames;
mod head;
mod json;
mod masking;
mod sockets;
mod utf8;

use utf8::Utf8State;

/// Inputs at least this large are processed with the GIL released, so other threads run meanwhile.
const DETACH_THRESHOLD: usize = 64 * 1024;

/// Calls `f` on the memory of a bytes-like object.
///
/// The flag passed to `f` says whether the memory is immutable (a `bytes` object), which makes it
/// safe to keep using it after releasing the GIL.
fn with_bytes<R>(obj: &Bound<'_, PyAny>, f: impl FnOnce(&[u8], bool) -> R) -> PyResult<R> {
    if let Ok(bytes) = obj.cast::<PyBytes>() {
        return Ok(f(bytes.as_bytes(), true));
    }
    let buffer = PyBuffer::<u8>::get(obj)?;
    if !buffer.is_c_contiguous() {
        return Err(PyTypeError::new_err(
            "expected a contiguous bytes-like object",
        ));
    }
    let (ptr, len) = (buffer.buf_ptr() as *const u8, buffer.len_bytes());
    if len == 0 || ptr.is_null() {
        return Ok(f(&[], false)); // an exporter may give a null pointer for no data
    }
    // SAFETY: `buffer` holds the export, so the memory stays allocated and its size fixed until it
    // is dropped after `f` returns; the GIL is held throughout (f gets `false`, so it never
    // releases it), hence no Python code can write to the memory while the slice is alive.
    let data = unsafe { std::slice::from_raw_parts(ptr, len) };
    Ok(f(data, false))
}

fn masking_key(key: &Bound<'_, PyAny>) -> PyResult<[u8; 4]> {
    with_bytes(key, |k, _| <[u8; 4]>::try_from(k))?
        .map_err(|_| PyValueError::new_err("masking key must be 4 bytes"))
}

/// Return `data` XOR-ed with the repeating 4-byte masking `key` (RFC 6455 section 5.3).
#[pyfunction]
fn mask<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    key: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let key = masking_key(key)?;
    with_bytes(data, |src, immutable| {
        PyBytes::new_with(py, src.len(), |out| {
            if immutable && src.len() >= DETACH_THRESHOLD {
                py.detach(|| masking::xor(src, out, key));
            } else {
                masking::xor(src, out, key);
            }
            Ok(())
        })
    })?
}

/// Return the concatenation of `parts` XOR-ed with `key`, in one pass and one allocation: for a
/// large frame that arrived in several reads, without joining them first.
#[pyfunction]
fn mask_join<'py>(
    py: Python<'py>,
    parts: Vec<Bound<'py, PyAny>>,
    key: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let key = masking_key(key)?;
    let sizes = parts
        .iter()
        .map(|part| with_bytes(part, |src, _| src.len()))
        .collect::<PyResult<Vec<usize>>>()?;
    PyBytes::new_with(py, sizes.iter().sum(), |out| {
        let mut pos = 0;
        for part in &parts {
            with_bytes(part, |src, _| {
                // A part may have changed size since it was measured; never write past `out`.
                let dst = out
                    .get_mut(pos..pos + src.len())
                    .ok_or_else(|| PyValueError::new_err("a part changed size"))?;
                let phase = pos % 4;
                let rotated = std::array::from_fn(|i| key[(phase + i) % 4]);
                masking::xor(src, dst, rotated);
                pos += src.len();
                Ok::<(), PyErr>(())
            })??;
        }
        Ok(())
    })
}

/// Incremental UTF-8 validator for a message that arrives in pieces.
///
/// `feed` fails as soon as the bytes so far cannot begin valid UTF-8, also in the middle of a
/// multi-byte sequence; `finish` also rejects a truncated final sequence. `error_offset` is the
/// stream offset of the first invalid sequence, or -1.
#[pyclass(module = "bolt._accel")]
#[derive(Default)]
struct Utf8Validator {
    state: Utf8State,
}

#[pymethods]
impl Utf8Validator {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    /// Forget everything fed so far, ready for a new message.
    fn reset(&mut self) {
        self.state = Utf8State::default();
    }

    /// Validate the next piece; False once the stream can no longer be valid UTF-8.
    fn feed(&mut self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<bool> {
        let state = self.state;
        self.state = with_bytes(data, |src, immutable| {
            if immutable && src.len() >= DETACH_THRESHOLD {
                py.detach(|| state.feed(src))
            } else {
                state.feed(src)
            }
        })?;
        Ok(self.state.is_valid())
    }

    /// True iff everything fed was valid and ends on a complete character.
    fn finish(&mut self) -> bool {
        self.state.finish()
    }

    /// Stream offset of the first invalid or truncated sequence, or -1.
    #[getter]
    fn error_offset(&self) -> isize {
        self.state.error_offset()
    }
}

/// Decode the header of the client frame that starts at `data[pos]`.
///
/// Returns `(b0, start, length)`: the first byte (FIN, RSV bits, opcode), the offset of the
/// payload, which the 4-byte masking key precedes, and the payload length. `start` may lie beyond
/// the end of `data` while the masking key is incomplete. None when the length itself is not
/// complete yet. ValueError, with the reason a close frame gives, for an unmasked frame or a
/// length that is not minimally encoded (RFC 6455 section 5.2).
#[pyfunction]
#[pyo3(signature = (data, pos = 0))]
fn decode_header(data: &Bound<'_, PyAny>, pos: isize) -> PyResult<Option<(u8, usize, u64)>> {
    let pos =
        usize::try_from(pos).map_err(|_| PyValueError::new_err("pos must not be negative"))?;
    with_bytes(data, |buf, _| frames::decode_header(buf, pos))?
        .map(|found| found.map(|h| (h.b0, h.start, h.length)))
        .map_err(PyValueError::new_err)
}

/// Decode the run of simple frames that starts at `data[pos]`, at most `max_messages` of them.
///
/// Simple means final, uncompressed, text or binary, masked, minimally encoded, at most
/// `max_size` payload bytes, complete in `data`, and for text valid UTF-8. Returns the payloads
/// (unmasked; `str` for text, `bytes` for binary) and the offset of the first frame that is not
/// simple, which the caller's full parser takes from there (it may be incomplete or invalid), or
/// of the frame behind the last message allowed.
#[pyfunction]
#[pyo3(signature = (data, pos = 0, max_size = usize::MAX, max_messages = isize::MAX))]
fn scan_frames<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    pos: isize,
    max_size: usize,
    max_messages: isize,
) -> PyResult<(Bound<'py, PyList>, usize)> {
    let pos =
        usize::try_from(pos).map_err(|_| PyValueError::new_err("pos must not be negative"))?;
    let mut left = usize::try_from(max_messages)
        .map_err(|_| PyValueError::new_err("max_messages must not be negative"))?;
    let messages = PyList::empty(py);
    let mut scratch = Vec::new(); // unmasked text, reused from frame to frame
    let end = with_bytes(data, |buf, _| -> PyResult<usize> {
        let mut pos = pos;
        while left > 0 {
            let Some(frame) = frames::simple_frame(buf, pos, max_size) else {
                break;
            };
            let payload = &buf[frame.payload.clone()];
            if frame.text {
                scratch.clear();
                scratch.resize(payload.len(), 0);
                masking::xor(payload, &mut scratch, frame.key);
                let Ok(text) = simdutf8::basic::from_utf8(&scratch) else {
                    break; // invalid UTF-8: the parser reports it as 1007
                };
                messages.append(PyString::new(py, text))?;
            } else {
                let bytes = PyBytes::new_with(py, payload.len(), |out| {
                    masking::xor(payload, out, frame.key);
                    Ok(())
                })?;
                messages.append(bytes)?;
            }
            pos = frame.payload.end;
            left -= 1;
        }
        Ok(pos)
    })??;
    Ok((messages, end))
}

fn invalid_json(pos: usize, reason: &str) -> PyErr {
    PyValueError::new_err(format!("invalid JSON at {pos}: {reason}"))
}

/// Turns byte offsets into the input's units: code points for a non-ASCII `str`, counted
/// incrementally (offsets arrive in increasing order, so a document costs one counting pass).
struct Units<'a> {
    text: &'a [u8],
    count_code_points: bool,
    byte: usize,
    index: usize,
}

impl Units<'_> {
    fn at(&mut self, byte: usize) -> usize {
        if !self.count_code_points {
            return byte;
        }
        // A code point starts at every byte that is not a continuation byte (10xxxxxx).
        let starts = self.text[self.byte..byte]
            .iter()
            .filter(|&&b| (b as i8) >= -64)
            .count();
        self.index += starts;
        self.byte = byte;
        self.index
    }
}

fn object_spans_dict<'py>(
    py: Python<'py>,
    text: &str,
    max_depth: usize,
    count_code_points: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let spans = PyDict::new(py);
    let mut units = Units {
        text: text.as_bytes(),
        count_code_points,
        byte: 0,
        index: 0,
    };
    let mut key = String::new(); // escapes resolved, reused across keys
    let mut failure = None;
    let result = json::object_spans(text, max_depth, |member| {
        let name = if member.escaped {
            json::unescape(member.key, &mut key);
            key.as_str()
        } else {
            member.key
        };
        let span = (units.at(member.start), units.at(member.end));
        if let Err(err) = spans.set_item(name, span) {
            failure.get_or_insert(err);
        }
    });
    if let Some(err) = failure {
        return Err(err);
    }
    result.map_err(|e| invalid_json(units.at(e.pos), e.reason))?;
    Ok(spans)
}

/// Validate that `text` (str, or UTF-8 bytes) is exactly one strict JSON object nested at most
/// `max_depth` deep, and return each top-level key -> (start, end) of its value's source text,
/// in the input's own units (code points for str, bytes otherwise). ValueError if invalid.
#[pyfunction]
fn json_object_spans<'py>(
    py: Python<'py>,
    text: &Bound<'py, PyAny>,
    max_depth: isize,
) -> PyResult<Bound<'py, PyDict>> {
    let max_depth = usize::try_from(max_depth).unwrap_or(0);
    if let Ok(string) = text.cast::<PyString>() {
        let utf8 = string.to_str().map_err(|err| {
            // A str with a lone surrogate has no UTF-8 form; the codec error says where it is.
            let at = err
                .value(py)
                .getattr("start")
                .and_then(|start| start.extract::<usize>());
            invalid_json(at.unwrap_or(0), "str contains a surrogate")
        })?;
        // Offsets of an ASCII str are its byte offsets; only other strs need counting.
        let ascii = string.len()? == utf8.len();
        return object_spans_dict(py, utf8, max_depth, !ascii);
    }
    with_bytes(text, |data, _| match simdutf8::basic::from_utf8(data) {
        Ok(utf8) => object_spans_dict(py, utf8, max_depth, false),
        Err(_) => {
            let at = utf8::check(data).err().map_or(0, |err| err.valid_up_to());
            Err(invalid_json(at, "invalid UTF-8"))
        }
    })?
}

/// Send the frame `data` to every socket of `fds` (non-blocking), with the GIL released and, for
/// many sockets, on several cores; returns `(index, bytes taken)` for each socket that did not take
/// it whole (0 when full or failed), in index order.
#[pyfunction]
fn send_many(py: Python<'_>, fds: Vec<i32>, data: &Bound<'_, PyBytes>) -> Vec<(usize, usize)> {
    let data = data.as_bytes();
    py.detach(|| sockets::send_all_parallel(&fds, data))
}

/// Split the request head of a WebSocket upgrade (everything before the blank line, without it).
///
/// Returns `(method, target, version, headers)`, `version` as in `b"1.1"`. Header names are
/// lower-cased, and given as the object `names` maps them to when it has them; values lose the
/// spaces and tabs around them. A header whose name is in `repeating`, with a value of at most 256
/// bytes, is the very tuple `shared` holds for it, or is added there while `shared` has fewer than
/// 1024: the headers that repeat from one connection to the next are kept once per process.
/// ValueError with `(status, detail)` for a head the handshake refuses.
#[pyfunction]
fn parse_head<'py>(
    py: Python<'py>,
    head: &Bound<'py, PyBytes>,
    names: &Bound<'py, PyDict>,
    repeating: &Bound<'py, PyAny>,
    shared: &Bound<'py, PyDict>,
) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>, Bound<'py, PyBytes>, Bound<'py, PyList>)> {
    let data = head.as_bytes();
    let parsed = head::parse(data).map_err(|(status, detail)| PyValueError::new_err((status, detail)))?;
    let headers = PyList::empty(py);
    for (name, value) in parsed.fields {
        let lowered = PyBytes::new(py, &data[name].to_ascii_lowercase());
        let name = match names.get_item(&lowered)? {
            Some(known) => known,
            None => lowered.into_any(),
        };
        let value_len = value.len();
        let header = PyTuple::new(py, [name.clone(), PyBytes::new(py, &data[value]).into_any()])?;
        if value_len <= head::SHARED_VALUE_MAX && repeating.contains(&name)? {
            if let Some(kept) = shared.get_item(&header)? {
                headers.append(kept)?;
                continue;
            }
            if shared.len() < head::SHARED_MAX {
                shared.set_item(&header, &header)?;
            }
        }
        headers.append(header)?;
    }
    Ok((
        PyBytes::new(py, &data[parsed.method]),
        PyBytes::new(py, &data[parsed.target]),
        PyBytes::new(py, &data[parsed.version]),
        headers,
    ))
}

#[pymodule]
fn _accel(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(decode_header, m)?)?;
    m.add_function(wrap_pyfunction!(mask, m)?)?;
    m.add_function(wrap_pyfunction!(parse_head, m)?)?;
    m.add_function(wrap_pyfunction!(mask_join, m)?)?;
    m.add_function(wrap_pyfunction!(scan_frames, m)?)?;
    m.add_function(wrap_pyfunction!(json_object_spans, m)?)?;
    m.add_function(wrap_pyfunction!(send_many, m)?)?;
    m.add_class::<Utf8Validator>()?;
    Ok(())
}
