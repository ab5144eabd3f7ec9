"""Wyoming frames read with limits, and written with a deadline.

A frame is one JSON header line ({"type": ..., "data": {...}, "data_length": N, "payload_length": M,
"version": ...}), then N bytes of JSON data merged into "data", then M bytes of payload (audio).
wyoming's own reader waits for and buffers whatever payload_length a header claims and logs a
traceback on junk; this one checks every field against ServeConfig's limits before reading a byte
of the body, and reads the body against a deadline, so that a frame costs at most the limits.
"""
from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any, Awaitable, TypeVar

from kws.config import ServeConfig

if TYPE_CHECKING:   # wyoming is the [serve] extra: imported where a server runs, not with this module
    from wyoming.event import Event

log = logging.getLogger(__name__)
T = TypeVar("T")


class FrameError(Exception):
    """A frame this server will not read: the connection it came on is closed (one log line, no traceback)."""


async def read_frame(reader: asyncio.StreamReader, cfg: ServeConfig) -> "Event | None":
    """The next frame as a wyoming Event; None when the client closed the connection between frames.

    The header line must come within idle_timeout_s and stay under max_header_bytes (the reader's
    limit); its data block and payload within frame_timeout_s. Raises FrameError otherwise."""
    from wyoming.event import Event
    try:
        line = await _within(reader.readuntil(b"\n"), cfg.idle_timeout_s)
    except asyncio.IncompleteReadError as e:
        if not e.partial:
            return None
        raise FrameError(f"closed in the middle of a header ({len(e.partial)} bytes)") from None
    except asyncio.LimitOverrunError:
        raise FrameError(f"header line longer than {cfg.max_header_bytes} bytes") from None
    except ValueError:   # readuntil's form of the limit overrun when the buffer is already full
        raise FrameError(f"header line longer than {cfg.max_header_bytes} bytes") from None
    except asyncio.TimeoutError:
        raise FrameError(f"idle for {cfg.idle_timeout_s:g} s") from None
    if len(line) > cfg.max_header_bytes:
        raise FrameError(f"header line longer than {cfg.max_header_bytes} bytes")
    header = _json_object(line, "header")
    kind = header.get("type")
    if not isinstance(kind, str) or not kind or len(kind) > 64:
        raise FrameError("header has no 'type' string")
    data = header.get("data", {})
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise FrameError(f"{_show(kind)}: 'data' is not an object")
    data_length = _length(header, "data_length", cfg.max_data_bytes, kind)
    payload_length = _length(header, "payload_length", cfg.max_payload_bytes, kind)
    async def body() -> tuple[bytes, bytes | None]:
        extra = await reader.readexactly(data_length) if data_length else b""
        return extra, (await reader.readexactly(payload_length) if payload_length else None)

    try:
        extra, payload = await _within(body(), cfg.frame_timeout_s)
    except asyncio.IncompleteReadError as e:
        raise FrameError(f"{_show(kind)}: closed {len(e.partial)} bytes into a body of "
                         f"{data_length + payload_length}") from None
    except asyncio.TimeoutError:
        raise FrameError(f"{_show(kind)}: body of {data_length + payload_length} bytes not sent within "
                         f"{cfg.frame_timeout_s:g} s") from None
    if extra:
        data = {**data, **_json_object(extra, f"{_show(kind)} data block")}
    return Event(type=kind, data=data, payload=payload)


async def _within(aw: Awaitable[T], seconds: float) -> T:
    """await aw, or raise TimeoutError after seconds: asyncio.timeout where there is one (3.11+), as it
    costs a timer where wait_for costs a task, twice a frame on every connection."""
    if hasattr(asyncio, "timeout"):
        async with asyncio.timeout(seconds):
            return await aw
    return await asyncio.wait_for(aw, seconds)


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):   # UnicodeDecodeError is a ValueError; nesting bombs recurse
        raise FrameError(f"{what} is not JSON ({len(raw)} bytes: {_show(raw[:40])})") from None
    if not isinstance(value, dict):
        raise FrameError(f"{what} is JSON but not an object")
    return value


def _length(header: dict[str, Any], key: str, limit: int, kind: str) -> int:
    n = header.get(key)
    if n is None:
        return 0
    # bool is an int to Python, and 1e9 or "5" are no lengths: only a plain non-negative int is one.
    if type(n) is not int or n < 0:
        raise FrameError(f"{_show(kind)}: {key} {_show(n)} is not a length")
    if n > limit:
        raise FrameError(f"{_show(kind)}: {key} {n} is over the limit of {limit} bytes")
    return n


def _show(x: object) -> str:
    """What a client sent, short and printable, for a log line."""
    return ascii(x)[:60]


async def write_event(writer: asyncio.StreamWriter, event: "Event", timeout_s: float) -> None:
    """One event, as wyoming writes it (header with version, data block, payload); raises TimeoutError
    when the client has not taken it within timeout_s (it does not read)."""
    from wyoming.event import async_write_event
    await asyncio.wait_for(async_write_event(event, writer), timeout_s)
