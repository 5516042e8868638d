"""The mission key: a shared secret of the satellites and the ground that authenticates streams.

A CRC-32 only catches accidents: anyone can recompute it over altered bytes. With a mission key
every container carries an HMAC-SHA256 (RFC 2104) over its bytes, so the ground refuses a stream
that was altered, forged, or taken from another capture (the capture id and member list are
inside what the tag covers). The key never comes from a scenario (scenarios are shared, logged
and hashed into summaries); it comes from the environment:

- ``DLRC_MISSION_KEY_FILE``: a file holding the key (its raw bytes; at least 16), or
- ``DLRC_MISSION_KEY``: the key as hexadecimal (at least 32 hex digits, i.e. 16 bytes).

Python's :mod:`hmac` and :mod:`hashlib` do the cryptography; nothing here is hand-written.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

MIN_KEY_BYTES = 16  # 128 bits; RFC 2104 asks for at least the hash's output length, 32 is better
ENV_FILE, ENV_HEX = "DLRC_MISSION_KEY_FILE", "DLRC_MISSION_KEY"


class MissionKeyError(ValueError):
    """The mission key named by the environment is unreadable or too short."""


def mission_key(environ: Mapping[str, str] | None = None) -> bytes | None:
    """The mission key from the environment, or None when neither variable is set."""
    env = os.environ if environ is None else environ
    if env.get(ENV_FILE):
        path = Path(env[ENV_FILE])
        try:
            key = path.read_bytes()
        except OSError as exc:
            raise MissionKeyError(f"{ENV_FILE}={path}: cannot read the mission key ({exc.strerror})") from None
        where = f"{ENV_FILE}={path}"
    elif env.get(ENV_HEX):
        try:
            key = bytes.fromhex(env[ENV_HEX].strip())
        except ValueError:
            raise MissionKeyError(f"{ENV_HEX}: not hexadecimal") from None
        where = ENV_HEX
    else:
        return None
    if len(key) < MIN_KEY_BYTES:
        raise MissionKeyError(f"{where}: the mission key has {len(key)} bytes, at least {MIN_KEY_BYTES} are needed")
    return key
