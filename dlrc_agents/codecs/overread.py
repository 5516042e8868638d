"""Zero padding that keeps CompressAI's rANS decoder inside its input.

CompressAI's ``RansDecoder`` (``cpp_exts/rans/rans_interface.cpp``, Rans64 of ryg_rans) reads the
string through a raw pointer with no bounds check: a string that is too short or not what the
encoder wrote (a corrupted stream whose CRC-32 was recomputed, with no mission key to refuse it)
makes it read past the buffer, and at worst crash the process. A valid stream is never read past
its end, so appending zero bytes changes nothing for it; for any other string the padding bounds
where the decoder can read. Per symbol the decoder reads at most one 32-bit word to renormalise,
and in bypass mode (values beyond the table) a run of 4-bit escapes: over zero words that run
ends within two words, and the raw value it announces needs at most 15·9 nibbles, i.e. 18 words.
Escapes consumed from the string itself are bounded by its length (two per byte, 15 nibbles each).
CompressAI offers no bounded decoder, and no other maintained rANS library decodes its streams,
hence this guard rather than a library call.
"""

from __future__ import annotations

WORST_BYTES_PER_SYMBOL = 4 * (1 + 2 + 18)  # renormalisation, escape run, raw value: 32-bit words
WORST_BYTES_PER_STRING_BYTE = 16  # escapes read from the string: 2 per byte × 15 nibbles ÷ 2 per byte
_INIT_BYTES = 8  # the decoder's initial 64-bit state


def padded(string: bytes, symbols: int) -> bytes:
    """``string`` followed by enough zero bytes that decoding ``symbols`` symbols from it cannot
    read past the buffer."""
    pad = _INIT_BYTES + WORST_BYTES_PER_SYMBOL * max(0, symbols) + WORST_BYTES_PER_STRING_BYTE * len(string)
    return string.ljust(len(string) + pad, b"\0")  # one allocation, the string copied once
