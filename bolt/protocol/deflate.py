"""permessage-deflate (RFC 7692): negotiation and the per-connection codec.

Memory is the cost that matters with many connections: zlib needs about
``2**(window_bits + 2) + 2**(mem_level + 9)`` bytes per compressor and ``2**window_bits``
(+7 KiB) per decompressor. The defaults keep both small and free them whenever RFC 7692
allows, so an idle connection holds no zlib state at all:

* the server compresses each message with a fresh compressor and says so
  (``server_no_context_takeover``), so no compressor outlives a send; measured, this is what
  takes an idle deflate connection from ~40 KiB to ~10 KiB (``benchmarks/idle_memory.py``);
* it compresses with a 4 KiB window (``server_max_window_bits=12``) and ``mem_level=5``; a
  smaller window than the client allows is always legal;
* it asks the client not to keep its context (``client_no_context_takeover``), so the
  decompressor only lives while a message is being inflated.

Keeping the server context (``server_no_context_takeover=False``) compresses streams of
small similar messages better at ~30 KiB per connection; the compressor is then still freed
after a whole keepalive interval without sends (:meth:`PerMessageDeflate.release_idle`),
which is always legal because a fresh compressor never refers back into earlier messages.
"""

from __future__ import annotations

import zlib

__all__ = ["DeflateOptions", "DeflateTerms", "PerMessageDeflate", "deflate_message", "negotiate"]

_TAIL = b"\x00\x00\xff\xff"  # the empty stored block every message ends with (RFC 7692 7.2.1)


class DeflateOptions:
    """The server's permessage-deflate policy.

    ``server_max_window_bits``: window used to compress (9-15); announced only when the
    client asks for a limit. ``client_max_window_bits``: window asked of the client when
    it allows one (9-15). ``client_no_context_takeover``: ask the client to reset its
    compressor for each message (frees our decompressor between messages).
    ``server_no_context_takeover``: compress every message with a fresh compressor (and
    tell the client it may do the same with its decompressor).
    ``compress_min_size``: messages shorter than this are sent uncompressed.
    """

    __slots__ = (
        "server_max_window_bits",
        "client_max_window_bits",
        "client_no_context_takeover",
        "server_no_context_takeover",
        "level",
        "mem_level",
        "compress_min_size",
    )

    def __init__(
        self,
        server_max_window_bits: int = 12,
        client_max_window_bits: int = 12,
        client_no_context_takeover: bool = True,
        server_no_context_takeover: bool = True,
        level: int = 6,
        mem_level: int = 5,
        compress_min_size: int = 0,
    ) -> None:
        for bits in (server_max_window_bits, client_max_window_bits):
            if not 9 <= bits <= 15:
                raise ValueError("window bits must be between 9 and 15")
        self.server_max_window_bits = server_max_window_bits
        self.client_max_window_bits = client_max_window_bits
        self.client_no_context_takeover = client_no_context_takeover
        self.server_no_context_takeover = server_no_context_takeover
        self.level = level
        self.mem_level = mem_level
        self.compress_min_size = compress_min_size


class InflateTooLarge(Exception):
    """The inflated message would exceed the size limit."""


class DeflateTerms:
    """What one negotiation agreed: the same object for every connection that agreed to the same."""

    __slots__ = ("response", "deflate_bits", "inflate_bits", "server_reset", "client_reset", "level", "mem_level",
                 "min_size", "shared_key")

    def __init__(self, response: bytes, deflate_bits: int, inflate_bits: int, server_reset: bool, client_reset: bool,
                 level: int, mem_level: int, min_size: int) -> None:
        self.response = response  # the Sec-WebSocket-Extensions value of the 101 answer
        self.deflate_bits = deflate_bits
        self.inflate_bits = inflate_bits
        self.server_reset = server_reset
        self.client_reset = client_reset
        self.level = level
        self.mem_level = mem_level
        self.min_size = min_size
        # With a fresh compressor per message, every connection with the same key compresses a
        # message to the same bytes (see bolt.wire); None when the compressor keeps its context.
        self.shared_key = (deflate_bits, level, mem_level) if server_reset else None


class PerMessageDeflate:
    """Compressor and decompressor of one connection, after negotiation.

    The agreed terms are shared (an idle connection keeps only a reference to them); ``min_size``
    and ``shared_key`` are theirs, read on every message sent.
    """

    __slots__ = ("terms", "min_size", "shared_key", "_compressor", "_decompressor", "_used_since_idle")

    def __init__(self, terms: DeflateTerms) -> None:
        self.terms = terms
        self.min_size = terms.min_size
        self.shared_key = terms.shared_key
        self._compressor: zlib._Compress | None = None
        self._decompressor: zlib._Decompress | None = None
        self._used_since_idle = False

    @property
    def response(self) -> bytes:
        """The Sec-WebSocket-Extensions value of the 101 answer."""
        return self.terms.response

    def compress(self, data: bytes) -> bytes:
        """Compress one whole message; the result goes out with RSV1 set."""
        self._used_since_idle = True
        c = self._compressor
        if c is None:
            terms = self.terms
            if terms.server_reset:
                return deflate_message(data, terms.deflate_bits, terms.level, terms.mem_level)
            c = self._compressor = zlib.compressobj(terms.level, zlib.DEFLATED, -terms.deflate_bits, terms.mem_level)
        return _finish(c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH))

    def inflate(self, data: bytes, budget: int) -> bytes:
        """Inflate the next piece of a message, producing at most ``budget`` bytes."""
        d = self._decompressor
        if d is None:
            d = self._decompressor = zlib.decompressobj(-self.terms.inflate_bits)
        out = d.decompress(data, budget + 1)
        if len(out) > budget or d.unconsumed_tail:
            raise InflateTooLarge
        return out

    def finish(self, budget: int) -> bytes:
        """End the message: inflate the implied tail and drop the context if agreed."""
        out = self.inflate(_TAIL, budget)
        d = self._decompressor
        if self.terms.client_reset or (d is not None and d.eof):
            self._decompressor = None
        return out

    def abort(self) -> None:
        """Forget a message that failed half-way."""
        self._decompressor = None

    def release_idle(self) -> None:
        """Free the compressor if nothing was sent since the previous call.

        Always allowed: the next message starts a fresh deflate stream, which the client's
        decompressor reads whatever context it kept.
        """
        if not self._used_since_idle:
            self._compressor = None
        self._used_since_idle = False


def deflate_message(data: bytes, window_bits: int, level: int, mem_level: int) -> bytes:
    """One message compressed by a fresh compressor, as its frame's payload (RFC 7692 section 7.2.1)."""
    c = zlib.compressobj(level, zlib.DEFLATED, -window_bits, mem_level)
    return _finish(c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH))


def _finish(out: bytes) -> bytes:
    # Drop the empty stored block every flush ends with; an empty message is a single 0x00 byte.
    if out.endswith(_TAIL):
        out = out[:-4]
    return out or b"\x00"


# RFC 7692 section 7.1.2: a window size is 8 to 15, written in decimal without a leading zero.
_WINDOW_BITS = {str(bits): bits for bits in range(8, 16)}


def _window_bits(value: str | None) -> int | None:
    return None if value is None else _WINDOW_BITS.get(value)


def negotiate(
    offers: list[tuple[str, list[tuple[str, str | None]]]], options: DeflateOptions
) -> PerMessageDeflate | None:
    """Accept the first permessage-deflate offer we can honour, or None to decline all.

    Offers with unknown, repeated or malformed parameters are declined one by one, as
    RFC 7692 section 5 asks; a declined extension is not an error.
    """
    for name, params in offers:
        if name == "permessage-deflate":
            offer = _offer_params(params)
            extension = _accept(offer, options) if offer is not None else None
            if extension is not None:
                return extension
    return None


_FLAGS = ("server_no_context_takeover", "client_no_context_takeover")
_PARAMS = (*_FLAGS, "server_max_window_bits", "client_max_window_bits")


def _offer_params(params: list[tuple[str, str | None]]) -> dict[str, str | None] | None:
    """An offer's parameters by name; None when one is unknown, repeated, or a flag with a value."""
    found: dict[str, str | None] = {}
    for key, value in params:
        if key in found or key not in _PARAMS or (key in _FLAGS and value is not None):
            return None
        found[key] = value
    return found


def _accept(offer: dict[str, str | None], options: DeflateOptions) -> PerMessageDeflate | None:
    """The extension agreed for one offer's parameters, or None when their window bits are invalid."""
    server_reset = options.server_no_context_takeover or "server_no_context_takeover" in offer
    client_reset = options.client_no_context_takeover or "client_no_context_takeover" in offer
    answer = ["permessage-deflate"]
    if server_reset:
        answer.append("server_no_context_takeover")
    if client_reset:
        answer.append("client_no_context_takeover")
    deflate_bits = options.server_max_window_bits
    if "server_max_window_bits" in offer:
        bits = _window_bits(offer["server_max_window_bits"])
        if bits is None or bits == 8:  # zlib cannot compress with a 256-byte window
            return None
        deflate_bits = min(deflate_bits, bits)
        answer.append(f"server_max_window_bits={deflate_bits}")
    inflate_bits = 15
    if "client_max_window_bits" in offer:
        value = offer["client_max_window_bits"]
        bits = 15 if value is None else _window_bits(value)
        if bits is None:
            return None
        inflate_bits = min(bits, options.client_max_window_bits)
        answer.append(f"client_max_window_bits={inflate_bits}")
        # zlib raises a requested 8-bit window to 9 bits; inflate with room for that.
        inflate_bits = max(inflate_bits, 9)
    key = ("; ".join(answer), deflate_bits, inflate_bits, server_reset, client_reset, options.level,
           options.mem_level, options.compress_min_size)
    terms = _TERMS.get(key)
    if terms is None:
        terms = DeflateTerms(key[0].encode("ascii"), *key[1:])
        if len(_TERMS) < _TERMS_MAX:
            _TERMS[key] = terms
    return PerMessageDeflate(terms)


# The terms agreed so far, shared by the connections that agreed to them. Few exist (the offer's
# parameters have a few values each; the rest is the server's options); the bound is a safeguard.
_TERMS: dict[tuple[str, int, int, bool, bool, int, int, int], DeflateTerms] = {}
_TERMS_MAX = 1024
