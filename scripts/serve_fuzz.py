#!/usr/bin/env python3
"""Fault benchmark of kws serve: hostile and malformed frames from many connections, while one
well-behaved client streams a dev stream through the same process.

    python scripts/serve_fuzz.py --bench SCRATCH/sb-dev-dense [--task S01] [--minutes 3] [--frames 1500] \
        [--seed 1] [--workers 1] [--out docs/serve_fuzz.json]

One `kws serve` (a subprocess, default limits) serves the task's profile. The good client sends Detect,
AudioStart and the first --minutes of the task's stream at real time, then AudioStop; its detections must
equal Detector.detect (kws detect) on the same audio. Meanwhile at least --frames hostile frames go in,
each kind on connections of their own: bad JSON, huge, negative, boolean or non-integer lengths, binary
junk, nesting bombs, headers with no end, unknown event types, impossible audio formats, frames cut off
by a hang-up in the header or the body, resets, random mutations of valid frames, slow-loris headers and
bodies (trickled until the server's timeouts end them), silent connections, and a client that floods
Describe and never reads. Checked: the server never exits, logs no traceback and no ERROR line,
answers Describe at the end, and its RSS (sampled every 0.5 s) stays bounded.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import struct
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from serve_load import Server, client, load_task, reference

HEADER = b'{"type": "audio-chunk", "data": {"rate": 16000, "width": 2, "channels": 1}, "payload_length": %d}\n'


def frame(kind: str, data: dict | None = None, payload: bytes = b"") -> bytes:
    h = {"type": kind, **({"data": data} if data else {}), **({"payload_length": len(payload)} if payload else {})}
    return json.dumps(h).encode() + b"\n" + payload


def hostile(rng: random.Random) -> tuple[str, bytes]:
    """One hostile frame (with a valid prefix where the attack needs one)."""
    start = frame("audio-start", {"rate": 16000, "width": 2, "channels": 1})
    kind = rng.choice(["bad_json", "huge_length", "negative_length", "odd_length", "junk", "nesting", "no_newline",
                       "unknown_type", "bad_format", "half_header", "half_body", "mutated", "data_not_object"])
    if kind == "bad_json":
        return kind, rng.choice([b'{"type": "describe",\n', b"{'type': 'describe'}\n", b'{"type": describe}\n',
                                 b'{"type": "detect", "data": {"names": ["a"]}\n', b"\xff\xfe{}\n", b"null\n"])
    if kind == "huge_length":
        n = rng.choice([10 ** 11, 2 ** 63, 2 ** 64 + 1, 10 ** 30, (1 << 20) + 1])
        key = rng.choice(["payload_length", "data_length"])
        return kind, b'{"type": "audio-chunk", "%s": %d}\n' % (key.encode(), n) + b"\0" * rng.randint(0, 64)
    if kind == "negative_length":
        return kind, b'{"type": "audio-chunk", "payload_length": %d}\n' % -rng.randint(1, 10 ** 9)
    if kind == "odd_length":
        v = rng.choice([b"true", b"1.5", b'"100"', b"1e9", b"NaN", b"Infinity", b"[3]", b"{}"])
        return kind, b'{"type": "audio-chunk", "payload_length": ' + v + b"}\n"
    if kind == "junk":
        return kind, bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 4096))) + b"\n"
    if kind == "nesting":
        return kind, rng.choice([b"[", b'{"a":']) * rng.randint(2000, 8000) + b"\n"
    if kind == "no_newline":
        return kind, b'{"type": "describe", "x": "' + b"a" * rng.randint(17000, 300000)
    if kind == "unknown_type":
        return kind, frame(rng.choice(["transcribe", "synthesize", "run-pipeline", "", "x" * 100, "Describe"]))
    if kind == "bad_format":
        fmt = rng.choice([{"rate": 0, "width": 2, "channels": 1}, {"rate": 16000, "width": 7, "channels": 1},
                          {"rate": 16000, "width": 2, "channels": 1000}, {"rate": "16000", "width": 2, "channels": 1},
                          {"rate": 10 ** 12, "width": 2, "channels": 1}, {}])
        return kind, start + frame("audio-chunk", fmt, b"\0" * 640)
    if kind == "half_header":   # then the connection is dropped
        h = frame("describe")
        return kind, h[:rng.randint(1, len(h) - 1)]
    if kind == "half_body":
        n = rng.randint(2, 32000)
        return kind, start + HEADER % n + b"\0" * rng.randint(0, n - 1)
    if kind == "data_not_object":
        return kind, rng.choice([b'{"type": "detect", "data": [1]}\n', b'{"type": "detect", "data": "x"}\n',
                                 b'{"type": "describe", "data_length": 4}\n[1]\n'])
    good = start + frame("audio-chunk", {"rate": 16000, "width": 2, "channels": 1}, os.urandom(640))
    raw = bytearray(good)
    for _ in range(rng.randint(1, 8)):
        raw[rng.randrange(len(raw))] = rng.getrandbits(8)
    return kind, bytes(raw[:rng.randint(1, len(raw))])


async def attack(host: str, port: int, data: bytes, rst: bool, rng: random.Random) -> str:
    """Send data, then hang up (reset or close) or wait for the server to close; what happened."""
    try:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(data)
        await writer.drain()
        if rst or rng.random() < 0.3:   # abrupt: gone without waiting
            if rst:
                writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return "client hung up"
        got = await asyncio.wait_for(reader.read(1 << 16), 15)
        writer.close()
        return "server closed" if not got else "server answered"
    except (ConnectionError, OSError):
        return "server reset"
    except asyncio.TimeoutError:   # a mutation that left a valid frame: the connection stays open, as it should
        writer.transport.abort()
        return "open after 15 s"


async def slow(host: str, port: int, what: str) -> str:
    """A slow-loris: a header trickled a byte a second, a body trickled after its header, or silence."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        if what == "slow_header":
            for b in b'{"type": "describe"' + b" " * 200:
                writer.write(bytes([b]))
                await writer.drain()
                await asyncio.sleep(1.0)
                if reader.at_eof():
                    break
        elif what == "slow_body":
            writer.write(HEADER % 32000)
            for _ in range(300):
                writer.write(b"\0" * 10)
                await writer.drain()
                await asyncio.sleep(0.5)
        await asyncio.wait_for(reader.read(), 120)
        return "server closed"
    except (ConnectionError, OSError):
        return "server closed"
    finally:
        writer.transport.abort()


async def no_reader(host: str, port: int, n: int) -> str:
    """Describe n times and never read the answers."""
    reader, writer = await asyncio.open_connection(host, port)
    d = frame("describe")
    try:
        for _ in range(n // 100):
            writer.write(d * 100)
            await asyncio.wait_for(writer.drain(), 30)
        await asyncio.sleep(15)          # the server's write timeout (10 s) ends it
        writer.write(d)
        await writer.drain()
        await asyncio.sleep(1)
        writer.write(d)
        await writer.drain()
        return "still open"
    except (ConnectionError, OSError):
        return "server closed"
    except asyncio.TimeoutError:
        return "stuck"
    finally:
        writer.transport.abort()


async def describe(host: str, port: int) -> int:
    from wyoming.client import AsyncTcpClient
    from wyoming.info import Describe, Info
    async with AsyncTcpClient(host, port) as c:
        await c.write_event(Describe().event())
        return len(Info.from_event(await asyncio.wait_for(c.read_event(), 30)).wake[0].models)


async def fuzz(server: Server, task, frames: int, seed: int) -> dict:
    rng = random.Random(seed)
    good = asyncio.create_task(client(server.host, server.port, task, realtime=True))
    kinds, outcomes, sent = Counter(), Counter(), 0
    specials = [asyncio.create_task(slow(server.host, server.port, w)) for w in ["slow_header"] * 10
                + ["slow_body"] * 10 + ["silent"] * 10]
    specials.append(asyncio.create_task(no_reader(server.host, server.port, 20000)))
    kinds.update({"slow_header": 10, "slow_body": 10, "silent": 10})
    sem = asyncio.Semaphore(20)

    async def one() -> None:
        nonlocal sent
        async with sem:
            kind, data = hostile(rng)
            kinds[kind] += 1
            sent += 1
            outcomes[await attack(server.host, server.port, data, rst=rng.random() < 0.1, rng=rng)] += 1
            await asyncio.sleep(0.05)   # spread over the good client's stream

    pending: set[asyncio.Task] = set()
    while sent < frames or not good.done():
        pending.add(asyncio.create_task(one()))
        pending = {t for t in pending if not t.done()}
        if len(pending) >= 40:
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        if server.proc.poll() is not None:
            break
    await asyncio.gather(*pending)
    special = [await s for s in specials]
    run = await good
    return {"kinds": dict(kinds), "one_frame_connections": sent, "outcomes": dict(outcomes),
            "slow_and_silent": dict(Counter(special[:-1])), "describe_never_read": special[-1],
            "good_detections": [(p, ms) for p, ms, _ in run.detections],
            "models_at_end": await describe(server.host, server.port)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", type=Path, required=True)
    ap.add_argument("--task", default="S01")
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--frames", type=int, default=1500, help="hostile one-frame connections, at least")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=1, help="kws serve --workers (a worker's death logs an ERROR line)")
    ap.add_argument("--out", type=Path, default=Path("docs/serve_fuzz.json"))
    a = ap.parse_args()
    task = load_task(a.bench / a.task, 0.0, a.minutes * 60)
    with tempfile.TemporaryDirectory() as tmp:
        task.reference = reference(task, Path(tmp))
    task.model = next(f"{task.name}:{p}" for p in os.listdir(task.profile) if not p.startswith("."))
    server = Server({task.name: task.profile}, ["--workers", str(a.workers)])
    time.sleep(1.0)
    rss_start = server.rss_mb[-1][1] if server.rss_mb else None
    t0 = time.monotonic()
    try:
        r = asyncio.run(fuzz(server, task, a.frames, a.seed))
        alive = server.proc.poll() is None
        peak = server.peak_rss_mb()
    finally:
        log = server.stop()
    rss = [m for _, m in server.rss_mb]
    result = {"command": " ".join(["python", *sys.argv]), "task": a.task, "minutes": a.minutes,
              "wall_s": round(time.monotonic() - t0, 1), "load_average": [round(x, 2) for x in os.getloadavg()],
              "hostile_frames": r["one_frame_connections"] + 30, "describe_flood_frames": 20000, **r,
              "good_expected": task.reference, "good_equal": r["good_detections"] == task.reference,
              "server_alive_to_the_end": alive, "crashes": 0 if alive else 1,
              "server_tracebacks": log.count("Traceback"),
              "server_error_lines": sum(" ERROR " in x for x in log.splitlines()),
              "server_warning_lines": sum(" WARNING " in x for x in log.splitlines()),
              "rss_mb": {"start": rss_start, "peak_sampled": max(rss) if rss else None, "end": rss[-1] if rss else None,
                         "vm_hwm": round(peak, 1), "samples": len(rss),
                         # the RSS every 20 s: a plateau, not a climb with the frames sent
                         "every_20_s": [round(m, 1) for t, m in server.rss_mb[::40]]}}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("good_expected",)}, indent=1))
    if not (result["good_equal"] and alive and result["server_tracebacks"] == 0 and result["server_error_lines"] == 0):
        sys.exit(1)


if __name__ == "__main__":
    main()
