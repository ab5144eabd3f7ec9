#!/usr/bin/env python3
"""Load benchmark of kws serve: many Wyoming clients at once, each streaming its own dev stream.

    python scripts/serve_load.py --bench SCRATCH/sb-dev-dense [--tasks 20] [--minutes 10] [--workers 1] \
        [--ramp 20,40,60,80,100,120] [--ramp-minutes 2] [--out docs/serve_load.json]

The bench is scripts/stream_bench.py's (TASK/stream.flac, TASK/truth.tsv, TASK/profile/). One `kws serve`
process (a subprocess, so that its memory and CPU are its own) serves every task's profile, the person
named after the task; each client sends Detect with its own task's model, then AudioStart, 1024-sample
16-bit chunks (as Home Assistant's satellites send them), AudioStop, and a Ping after each second of audio.
  realtime  --tasks clients at once, each the first --minutes of a different task's stream, paced as a
            microphone delivers it (a chunk is sent when its last sample is due). Every client's
            detections must equal Detector.detect (kws detect) on the same audio: phrase and end in ms.
            Latency: when the client got the Detection minus when the phrase's speech ended (truth.tsv)
            in its stream, for detections of a phrase (the target's or another speaker's), split into the
            detector's own delay (the stream time it decided at, from the server's log) and the wait in
            the server and the network; lag: a Pong's
            round trip, which the server answers only once the audio before it went through the detector.
  fast      the same clients and audio, each sent as fast as the server takes it (TCP backpressure):
            the same detections, and how many times real time the process keeps up with in all.
  ramp      N = 10, 20, 30, ... real-time streams of --ramp-minutes (stream k: task k mod 20, from minute
            10 * (k // 20 mod 3) of its stream), until one falls behind: latency p95 over 0.5 s, lag p95
            over 0.5 s, or lag growing (last fifth's mean over the first fifth's by 0.25 s or more).
Also: the server's peak RSS (VmHWM) and CPU seconds, the client process's CPU, the load average.
"""
from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import kws

kws.limit_blas_threads()

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

SR = 16000
CHUNK = 1024
PHRASE_KINDS = ("positive", "other_phrase")


@dataclass
class Task:
    name: str
    profile: Path
    pcm: np.ndarray                 # int16
    phrases: list[tuple[float, float, float]]   # (start, end, speech_end) of every phrase said, seconds
    model: str = ""
    reference: list[tuple[str, int]] = field(default_factory=list)


def load_task(folder: Path, offset_s: float, seconds: float) -> Task:
    a, n = int(offset_s * SR), int(seconds * SR)
    pcm, _ = sf.read(folder / "stream.flac", start=a, frames=n, dtype="int16")
    with open(folder / "truth.tsv", newline="") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if r["kind"] in PHRASE_KINDS]
    phrases = [(float(r["start"]) - offset_s, float(r["end"]) - offset_s, float(r["speech_end"]) - offset_s)
               for r in rows if offset_s <= float(r["start"]) and float(r["end"]) <= offset_s + len(pcm) / SR]
    return Task(folder.name, folder / "profile", pcm, phrases)


def reference(task: Task, tmp: Path) -> list[tuple[str, int]]:
    """kws detect on the same audio: Detector.detect on it as a file."""
    from kws.app.api import Detector
    path = tmp / f"{task.name}.wav"
    sf.write(path, task.pcm, SR, subtype="PCM_16")
    return [(d.phrase, round(d.end_s * 1000)) for d in Detector(task.profile).detect(path)]


class Server:
    """`kws serve` in a subprocess; its RSS is sampled while it runs."""

    def __init__(self, people: dict[str, Path], extra: list[str] = ()):
        args = [a for name, p in people.items() for a in ("--profiles", f"{name}={p}")]
        self.proc = subprocess.Popen([sys.executable, "-m", "kws", "serve", *args, "--set", "serve.port=0", *extra],
                                     stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.log: list[str] = []
        for line in self.proc.stderr:
            self.log.append(line)
            if m := re.search(r"on tcp://([\d.]+):(\d+)", line):
                self.host, self.port = m.group(1), int(m.group(2))
                break
        else:
            raise RuntimeError("kws serve did not start:\n" + "".join(self.log))
        self.rss_mb: list[tuple[float, float]] = []
        threading.Thread(target=self._drain, daemon=True).start()
        threading.Thread(target=self._sample, daemon=True).start()

    def _drain(self) -> None:
        for line in self.proc.stderr:
            self.log.append(line)

    def pids(self) -> list[int]:
        """The server and its worker processes (--workers)."""
        p = self.proc.pid
        try:
            return [p, *map(int, Path(f"/proc/{p}/task/{p}/children").read_text().split())]
        except OSError:
            return [p]

    def _status(self, key: str) -> float:
        """The sum over the server's processes (MB): shared copy-on-write pages count once per process."""
        total = 0.0
        for pid in self.pids():
            with open(f"/proc/{pid}/status") as f:
                total += next(int(x.split()[1]) for x in f if x.startswith(key + ":")) / 1024
        return total

    def _sample(self) -> None:
        while self.proc.poll() is None:
            try:
                self.rss_mb.append((time.monotonic(), self._status("VmRSS")))
            except (OSError, StopIteration):
                break
            time.sleep(0.5)

    def peak_rss_mb(self) -> float:
        return self._status("VmHWM")

    def cpu_s(self) -> float:
        total = 0.0
        for pid in self.pids():
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)
        time.sleep(0.2)
        return "".join(self.log)


@dataclass
class Run:
    detections: list[tuple[str, int, float]] = field(default_factory=list)   # (phrase, ms, when received)
    lags: list[tuple[float, float]] = field(default_factory=list)            # (audio position s, round trip s)
    t0: float = 0.0


async def client(host: str, port: int, task: Task, realtime: bool) -> Run:
    from wyoming.audio import AudioChunk, AudioStart, AudioStop
    from wyoming.client import AsyncTcpClient
    from wyoming.ping import Ping, Pong
    from wyoming.wake import Detect, Detection
    loop, run, sent = asyncio.get_running_loop(), Run(), {}
    async with AsyncTcpClient(host, port) as c:
        async def read() -> None:
            while (e := await c.read_event()) is not None:
                now = loop.time()
                if Detection.is_type(e.type):
                    d = Detection.from_event(e)
                    run.detections.append((d.name.split(":", 1)[1], d.timestamp, now))
                elif Pong.is_type(e.type):
                    text = Pong.from_event(e).text
                    if text == "end":
                        return
                    run.lags.append((int(text) / SR, now - sent.pop(text)))

        reading = asyncio.create_task(read())
        await c.write_event(Detect(names=[task.model]).event())
        await c.write_event(AudioStart(rate=SR, width=2, channels=1).event())
        raw, per_ping = task.pcm.tobytes(), SR // CHUNK * CHUNK
        run.t0 = loop.time()
        for k, a in enumerate(range(0, len(task.pcm), CHUNK)):
            if realtime:
                await asyncio.sleep(run.t0 + (a + CHUNK) / SR - loop.time())
            await c.write_event(AudioChunk(rate=SR, width=2, channels=1, audio=raw[2 * a:2 * (a + CHUNK)]).event())
            if (a + CHUNK) % per_ping == 0:
                sent[str(a + CHUNK)] = loop.time()
                await c.write_event(Ping(text=str(a + CHUNK)).event())
        await c.write_event(AudioStop().event())
        await c.write_event(Ping(text="end").event())
        await asyncio.wait_for(reading, 600)
    return run


def latencies(task: Task, run: Run, decided: dict[tuple[str, int], float]) -> list[tuple[float, float | None]]:
    """Per detection of a phrase said: (received minus the moment the phrase's speech ended in the stream,
    the part of it that is the detector's own: the stream time it decided at, from the server's log, minus
    that moment); the rest is waiting in the server and the network."""
    out = []
    for phrase, ms, when in run.detections:
        hit = [se for s, e, se in task.phrases if s - 0.5 <= ms / 1000 <= e + 0.5]
        if hit:
            d = decided.get((f"{task.name}:{phrase}", ms))
            out.append((when - (run.t0 + hit[0]), None if d is None else d - hit[0]))
    return out


def decisions(log: list[str]) -> dict[tuple[str, int], float]:
    """(model, ms) -> the stream time the server decided at, from its log lines."""
    out = {}
    for line in log:
        if m := re.search(r": (\S+) at ([\d.]+) s \(decided at ([\d.]+) s", line):
            out[m.group(1), round(float(m.group(2)) * 1000)] = float(m.group(3))
    return out


def pct(x: list[float], q: float) -> float | None:
    return round(float(np.percentile(x, q)), 3) if x else None


async def clients(server: Server, tasks: list[Task], realtime: bool) -> list[Run]:
    return await asyncio.gather(*(client(server.host, server.port, t, realtime) for t in tasks))


def phase(server: Server, tasks: list[Task], realtime: bool, check: bool) -> dict:
    cpu0, ru0, t0 = server.cpu_s(), resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    runs = asyncio.run(clients(server, tasks, realtime))
    wall, ru1 = time.monotonic() - t0, resource.getrusage(resource.RUSAGE_SELF)
    audio = sum(len(t.pcm) for t in tasks) / SR
    time.sleep(0.5)   # the server's last log lines
    decided = decisions(list(server.log))
    both = [x for t, r in zip(tasks, runs) for x in latencies(t, r, decided)]
    lat, own = [x for x, _ in both], [y for _, y in both if y is not None]
    wait = [x - y for x, y in both if y is not None]
    lags = [lag for r in runs for _, lag in r.lags]
    growing = []
    for r in runs:
        if len(r.lags) >= 10:
            fifth = len(r.lags) // 5
            growing.append(np.mean([g for _, g in r.lags[-fifth:]]) - np.mean([g for _, g in r.lags[:fifth]]))
    out = {"clients": len(tasks), "audio_s": round(audio, 1), "wall_s": round(wall, 1),
           "x_real_time": round(audio / wall, 2), "detections": sum(len(r.detections) for r in runs),
           "latency_s": {"n": len(lat), "p50": pct(lat, 50), "p95": pct(lat, 95), "max": pct(lat, 100),
                         "detector_p50": pct(own, 50), "detector_p95": pct(own, 95),
                         "server_wait_p50": pct(wait, 50), "server_wait_p95": pct(wait, 95)}
           if realtime else None,   # sent faster than real time, the phrase's end has no moment to count from
           "lag_s": {"n": len(lags), "p50": pct(lags, 50), "p95": pct(lags, 95), "max": pct(lags, 100),
                     "growth_max": round(float(max(growing)), 3) if growing else None},
           "server_cpu_s": round(server.cpu_s() - cpu0, 1),
           "client_cpu_s": round(ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime, 1),
           "load_average_after": [round(x, 2) for x in os.getloadavg()]}
    if check:
        wrong = {t.name: {"served": [(p, ms) for p, ms, _ in r.detections], "kws_detect": t.reference}
                 for t, r in zip(tasks, runs) if [(p, ms) for p, ms, _ in r.detections] != t.reference}
        out["equal_to_kws_detect"] = f"{len(tasks) - len(wrong)}/{len(tasks)}"
        out["unequal"] = wrong
    return out


def held(step: dict, limit_s: float = 0.5) -> bool:
    """A real-time step held when no stream fell behind: latency and lag p95 within limit_s, lag not growing."""
    lat, lag = step["latency_s"], step["lag_s"]
    return ((lat["p95"] or 0) <= limit_s and (lag["p95"] or 0) <= limit_s
            and (lag["growth_max"] or 0) < limit_s / 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", type=Path, required=True, help="a stream_bench.py build folder")
    ap.add_argument("--tasks", type=int, default=20)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--ramp", default="10,20,30,40,50,60,80,100,120", help="real-time stream counts to try, in order")
    ap.add_argument("--ramp-minutes", type=float, default=2.0)
    ap.add_argument("--workers", type=int, default=1, help="kws serve --workers")
    ap.add_argument("--skip", default="", help="phases to leave out: realtime,fast,ramp")
    ap.add_argument("--out", type=Path, default=Path("docs/serve_load.json"))
    a = ap.parse_args()
    skip = set(filter(None, a.skip.split(",")))
    folders = sorted(p for p in a.bench.iterdir() if (p / "stream.flac").is_file())[:a.tasks]
    result = {"command": " ".join(["python", *sys.argv]), "bench": str(a.bench), "tasks": [f.name for f in folders],
              "minutes": a.minutes, "chunk_samples": CHUNK, "cores": os.cpu_count(),
              "load_average_before": [round(x, 2) for x in os.getloadavg()]}
    tasks = [load_task(f, 0.0, a.minutes * 60) for f in folders]
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        for t in tasks:
            t.reference = reference(t, Path(tmp))
    result["reference_s"] = round(time.monotonic() - t0, 1)
    result["workers"] = a.workers
    server = Server({f.name: f / "profile" for f in folders}, ["--workers", str(a.workers)])
    try:
        for t in tasks:
            t.model = next(f"{t.name}:{p}" for p in os.listdir(t.profile) if not p.startswith("."))
        if "realtime" not in skip:
            result["realtime"] = phase(server, tasks, realtime=True, check=True)
            print("realtime", json.dumps(result["realtime"])[:600], flush=True)
        if "fast" not in skip:
            result["fast"] = phase(server, tasks, realtime=False, check=True)
            print("fast", json.dumps(result["fast"])[:600], flush=True)
        if "ramp" not in skip:
            result["ramp"], result["max_realtime_streams_held"] = [], 0
            for n in map(int, a.ramp.split(",")):
                ramp = []
                for k in range(n):
                    f = folders[k % len(folders)]
                    t = load_task(f, 600.0 * ((k // len(folders)) % 3), a.ramp_minutes * 60)
                    t.model = next(x.model for x in tasks if x.name == f.name)
                    ramp.append(t)
                step = phase(server, ramp, realtime=True, check=False)
                step["held"] = held(step)
                result["ramp"].append(step)
                print("ramp", n, json.dumps(step)[:400], flush=True)
                if not step["held"]:
                    break
                result["max_realtime_streams_held"] = n
        result["server_peak_rss_mb"] = round(server.peak_rss_mb(), 1)
    finally:
        log = server.stop()
    result["server_tracebacks"] = log.count("Traceback")
    result["server_errors"] = sum(" ERROR " in line for line in log.splitlines())
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
