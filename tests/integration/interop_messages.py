"""The message mix every interop peer echoes through the server, and its checks.

1,000 messages, text and binary, of seeded random sizes from 0 B to 256 KiB.
The sizes are skewed small so that one peer's run takes about a second:
most messages are under 4 KiB (log-uniform), one in fifty is 4-64 KiB and
one in a hundred 64-256 KiB; the empty message and one of exactly 256 KiB
are always in.  Half the payloads are incompressible random bytes or
characters, half repeat a short phrase, so permessage-deflate has work of
both kinds.  Text mixes 1-, 2-, 3- and 4-byte UTF-8 characters.
"""

from __future__ import annotations

import base64
import hashlib
import random
from dataclasses import dataclass
from typing import Any

SEED = 20261201
COUNT = 1000
MAX_SIZE = 256 * 1024

# Characters of 1, 2, 3 and 4 UTF-8 bytes.
ALPHABET = "abcxyz019 .,é߷€中𝄞😀"
PHRASE = "the quick brown fox jumps over the lazy dog; "


@dataclass(frozen=True)
class Mix:
    messages: list[str | bytes]

    @property
    def total_bytes(self) -> int:
        return sum(len(m.encode()) if isinstance(m, str) else len(m) for m in self.messages)

    def digest(self) -> str:
        """SHA-256 over every message, its kind first: the same on every peer."""
        return digest_of(self.messages)

    def as_json(self) -> list[dict[str, str]]:
        """For JavaScript peers: text as is, binary base64-encoded."""
        return [
            {"text": m} if isinstance(m, str) else {"binary": base64.b64encode(m).decode()}
            for m in self.messages
        ]


def digest_of(messages: list[str | bytes]) -> str:
    sha = hashlib.sha256()
    for m in messages:
        payload = m.encode() if isinstance(m, str) else m
        sha.update(b"T" if isinstance(m, str) else b"B")
        sha.update(len(payload).to_bytes(4, "big"))
        sha.update(payload)
    return sha.hexdigest()


def _size(rng: random.Random) -> int:
    draw = rng.random()
    if draw < 0.01:
        return rng.randint(64 * 1024, MAX_SIZE)
    if draw < 0.03:
        return rng.randint(4 * 1024, 64 * 1024)
    return int(2 ** rng.uniform(0, 12)) - 1  # 0 B .. 4 KiB, log-uniform


def _text(rng: random.Random, size: int, compressible: bool) -> str:
    """About `size` bytes of UTF-8 (never more)."""
    if compressible:
        return (PHRASE * (size // len(PHRASE) + 1))[:size]
    chars: list[str] = []
    used = 0
    while True:
        char = rng.choice(ALPHABET)
        width = len(char.encode())
        if used + width > size:
            return "".join(chars)
        chars.append(char)
        used += width


def _binary(rng: random.Random, size: int, compressible: bool) -> bytes:
    if compressible:
        return (bytes(range(64)) * (size // 64 + 1))[:size]
    return rng.randbytes(size)


def message_mix(seed: int = SEED, count: int = COUNT) -> Mix:
    rng = random.Random(seed)
    sizes = [0, MAX_SIZE] + [_size(rng) for _ in range(count - 2)]
    rng.shuffle(sizes)
    messages: list[str | bytes] = []
    for size in sizes:
        compressible = rng.random() < 0.5
        if rng.random() < 0.5:
            messages.append(_text(rng, size, compressible))
        else:
            messages.append(_binary(rng, size, compressible))
    return Mix(messages)


def check_echo_report(report: dict[str, Any], mix: Mix) -> None:
    """What a JavaScript peer reports after echoing the mix: every message back,
    the same kind and bytes, in order."""
    assert report.get("error") is None, report
    mismatches = report["mismatches"]
    assert mismatches == [], f"echoes differing from what was sent: {mismatches}"
    assert report["received"] == len(mix.messages)
    assert report["bytes"] == mix.total_bytes
    assert report["digest"] == mix.digest()
