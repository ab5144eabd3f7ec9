"""kws serve: the Wyoming protocol as Home Assistant speaks it, the same decisions as kws detect, hot
reload of enrollments, and the limits that close only the offending connection."""
import asyncio
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import write
from scipy.signal import resample_poly
from synth import SR, stream, utterance
from test_stream import PHRASE, UTTERANCES
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.event import Event
from wyoming.info import Describe, Info
from wyoming.ping import Ping, Pong
from wyoming.wake import Detect, Detection, NotDetected

from kws.app.api import Detector, Profile
from kws.app.household import Household, parse_profiles
from kws.app.serve import default_uri, running
from kws.app.wake_stream import pcm_to_float
from kws.app.wyoming_frames import FrameError, read_frame
from kws.config import DEFAULT, Config, ServeConfig
from kws.errors import KwsError

NEGATIVE = [(["bravo"], 120, 1.0), (["omega", "bravo"], 120, 1.0), (["delta", "omega"], 120, 1.0),
            (["omega"], 200, 1.15), (["bravo", "omega", "bravo"], 200, 1.15)]
POSITIVE = [(["bravo"], 120, 1.0), (PHRASE, 120, 1.0), (["omega", "bravo"], 120, 1.0)]


def pcm16(y: np.ndarray) -> np.ndarray:
    return np.round(np.clip(y, -1.0, 32767 / 32768) * 32768).astype("<i2")


def address(uri: str) -> tuple[str, int]:
    host, port = uri.removeprefix("tcp://").rsplit(":", 1)
    return host, int(port)


async def _session(uri: str, pcm: np.ndarray, rate: int = SR, names: list[str] | None = None,
                   frames: int = 1024) -> tuple[Info, list[Event]]:
    """Home Assistant's order: Describe -> Info, Detect, AudioStart, the chunks, AudioStop; then a Ping, whose
    Pong says that everything sent before it has been answered."""
    channels = 1 if pcm.ndim == 1 else pcm.shape[1]
    async with AsyncTcpClient(*address(uri)) as c:
        await c.write_event(Describe().event())
        info = Info.from_event(await c.read_event())
        await c.write_event(Detect(names=names).event())
        await c.write_event(AudioStart(rate=rate, width=2, channels=channels).event())
        for i in range(0, len(pcm), frames):
            await c.write_event(AudioChunk(rate=rate, width=2, channels=channels, audio=pcm[i:i + frames].tobytes()).event())
        await c.write_event(AudioStop().event())
        await c.write_event(Ping(text="done").event())
        events = []
        while (e := await c.read_event()) is not None and not Pong.is_type(e.type):
            events.append(e)
        assert e is not None, "the server closed the connection"
        return info, events


def session(uri: str, pcm: np.ndarray, **kw) -> tuple[Info, list[Event]]:
    return asyncio.run(asyncio.wait_for(_session(uri, pcm, **kw), 300))


def answers(events: list[Event]) -> list[tuple]:
    out = []
    for e in events:
        if Detection.is_type(e.type):
            d = Detection.from_event(e)
            out.append((d.name, d.speaker, d.timestamp))
        else:
            out.append((e.type,))
    return out


def kws_detect(profile_dir, path) -> list[tuple[str, int]]:
    """What `kws detect` decides on the file: phrase and end (ms)."""
    return [(d.phrase, round(d.end_s * 1000)) for d in Detector(profile_dir).detect(path)]


@pytest.fixture(scope="module")
def served(personal_profile):
    with running(Household({"me": personal_profile}, "balanced", DEFAULT), DEFAULT) as uri:
        yield uri


def test_positive_is_one_detection_with_its_name_speaker_and_time(served, personal_profile, tmp_path):
    y, truth = stream(POSITIVE, seed=5)
    pcm = pcm16(y)
    info, events = session(served, pcm, names=["me:alpha-delta"])
    [program] = info.wake
    assert [(m.name, m.phrase, m.attribution.name) for m in program.models] == [("me:alpha-delta", "alpha-delta", "me")]
    [(name, speaker, ms)] = answers(events)            # exactly one Detection, and no NotDetected after it
    assert (name, speaker) == ("me:alpha-delta", "me")
    start, end, _ = truth[1]
    assert start * 1000 < ms <= end * 1000
    assert kws_detect(personal_profile, write(tmp_path / "p.wav", pcm, subtype="PCM_16")) == [("alpha-delta", ms)]


def test_negative_is_not_detected(served):
    y, _ = stream(NEGATIVE, seed=6)
    _, events = session(served, pcm16(y), names=["me:alpha-delta"])
    assert len(events) == 1 and NotDetected.is_type(events[0].type)


def test_decisions_equal_kws_detect_whatever_the_chunks(served, personal_profile, tmp_path):
    y, _ = stream(UTTERANCES, seed=3)
    pcm = pcm16(y)
    want = [("me:" + p, "me", ms) for p, ms in kws_detect(personal_profile, write(tmp_path / "u.wav", pcm, subtype="PCM_16"))]
    assert len(want) == 4   # the phrase said alone twice, and inside two other utterances
    for frames in (160, 1777, 16000):
        _, events = session(served, pcm, frames=frames)   # Detect without names: every model
        assert answers(events) == want, frames


def test_44k_stereo_gives_the_same_answers(served, personal_profile, tmp_path):
    for utterances, seed in ((POSITIVE, 5), (NEGATIVE, 6)):
        y, _ = stream(utterances, seed=seed)
        mono = answers(session(served, pcm16(y))[1])
        y44 = resample_poly(y, 441, 160)
        pcm = pcm16(np.stack([y44, 0.5 * y44], axis=1))
        stereo = answers(session(served, pcm, rate=44100, frames=4410)[1])
        assert [a[:2] for a in stereo] == [a[:2] for a in mono]
        assert all(abs(s[2] - m[2]) <= 100 for s, m in zip(stereo, mono) if len(s) == 3)   # within a hop
        path = tmp_path / f"s{seed}.wav"
        sf.write(path, pcm, 44100, subtype="PCM_16")
        assert [("me:" + p, "me", ms) for p, ms in kws_detect(personal_profile, path)] == \
            [a for a in stereo if len(a) == 3]                                                  # = kws detect


@pytest.mark.parametrize("width, subtype", [(1, "PCM_U8"), (2, "PCM_16"), (3, "PCM_24"), (4, "PCM_32")])
def test_pcm_is_read_as_soundfile_reads_it(tmp_path, width, subtype):
    rng = np.random.default_rng(width)
    y = np.clip(rng.standard_normal((4000, 2)) * 0.3, -1, 1).astype(np.float32)
    sf.write(tmp_path / "x.wav", y, SR, subtype=subtype)
    want, _ = sf.read(tmp_path / "x.wav", dtype="float32", always_2d=True)
    raw = (tmp_path / "x.wav").read_bytes()
    data = raw[raw.index(b"data") + 8:]          # the PCM of the WAV's data chunk, as a client would send it
    assert np.array_equal(pcm_to_float(data, width, 2), want.mean(axis=1))


@pytest.fixture(scope="module")
def second_person(tmp_path_factory):
    """Another voice (pitch 200 Hz, another vocal tract) with another phrase, 'bravo-omega'."""
    takes = tmp_path_factory.mktemp("takes")
    paths = [write(takes / f"t{i}.wav", utterance(["bravo", "omega"], 200, 1.15, seed=40 + i)) for i in range(5)]
    folder = tmp_path_factory.mktemp("you") / "you"
    Profile.enroll(folder, "bravo-omega", paths)
    return folder


def test_a_household_says_who_spoke(personal_profile, second_person):
    y, _ = stream([(["omega"], 120, 1.0), (PHRASE, 120, 1.0), (["delta"], 200, 1.15),
                   (["bravo", "omega"], 200, 1.15), (["alpha"], 120, 1.0)], seed=8)
    household = Household(parse_profiles([f"me={personal_profile}", str(second_person)]), "balanced", DEFAULT)
    with running(household, DEFAULT) as uri:
        info, events = session(uri, pcm16(y))
        assert sorted(m.name for m in info.wake[0].models) == ["me:alpha-delta", "you:bravo-omega"]
        assert [a[:2] for a in answers(events)] == [("me:alpha-delta", "me"), ("you:bravo-omega", "you")]
        _, events = session(uri, pcm16(y), names=["you:bravo-omega"])
        assert [a[:2] for a in answers(events)] == [("you:bravo-omega", "you")]
    with pytest.raises(KwsError, match="two people named"):
        parse_profiles([f"me={personal_profile}", f"me={second_person}"])


def test_one_process_serves_four_people_with_two_phrases_each(personal_profile, second_person, tmp_path):
    """A household of 4 x 2 (each person's folder holds copies of the same two phrases, so every profile
    accepts the same utterances): Info lists the 8 models, each utterance wakes the client once, and Detect
    names pick whose phrase is listened for."""
    people = []
    for i in range(4):
        for src in (personal_profile / "alpha-delta", second_person / "bravo-omega"):
            shutil.copytree(src, tmp_path / f"p{i}" / src.name)
        people.append(f"p{i}={tmp_path / f'p{i}'}")
    y, _ = stream([(["omega"], 120, 1.0), (PHRASE, 120, 1.0), (["delta"], 200, 1.15),
                   (["bravo", "omega"], 200, 1.15), (["alpha"], 120, 1.0)], seed=8)
    with running(Household(parse_profiles(people), "balanced", DEFAULT), DEFAULT) as uri:
        info, events = session(uri, pcm16(y))
        assert sorted(m.name for m in info.wake[0].models) == [f"p{i}:{p}" for i in range(4) for p in ("alpha-delta", "bravo-omega")]
        heard = answers(events)
        assert [h[0].split(":")[1] for h in heard] == ["alpha-delta", "bravo-omega"], heard
        _, events = session(uri, pcm16(y), names=["p2:bravo-omega", "p3:alpha-delta"])
        assert [a[:2] for a in answers(events)] == [("p3:alpha-delta", "p3"), ("p2:bravo-omega", "p2")]


def _wait_for(what, seconds: float = 120.0):
    """Poll until what() is true (the server looks at the folders every reload_interval_s)."""
    end = time.monotonic() + seconds
    while not (ok := what()) and time.monotonic() < end:
        time.sleep(0.05)
    return ok


def describe(uri: str) -> list[str]:
    async def go():
        async with AsyncTcpClient(*address(uri)) as c:
            await c.write_event(Describe().event())
            return sorted(m.name for m in Info.from_event(await c.read_event()).wake[0].models)
    return asyncio.run(asyncio.wait_for(go(), 60))


def test_an_enrollment_is_served_without_a_restart_and_never_half_written(tiny_task, personal_profile, tmp_path, caplog):
    late = tmp_path / "late"
    late.mkdir()
    cfg = Config(serve=ServeConfig(reload_interval_s=0.05))
    whole = (personal_profile / "alpha-delta" / "profile.npz").read_bytes()
    y, _ = stream(POSITIVE, seed=5)
    with caplog.at_level(logging.INFO), running(Household({"late": late}, "balanced", cfg), cfg) as uri:
        assert describe(uri) == []
        Profile.enroll(late, "alpha-delta", sorted((tiny_task / "data" / "S001" / "enroll").glob("*.wav")))
        assert _wait_for(lambda: describe(uri) == ["late:alpha-delta"])
        assert [a[:2] for a in answers(session(uri, pcm16(y))[1])] == [("late:alpha-delta", "late")]
        (late / "half").mkdir()                                    # written in place, and not finished yet
        (late / "half" / "profile.npz").write_bytes(whole[:len(whole) // 2])
        (late / ".staged.v-1").mkdir()                             # a version being built: never linked
        (late / ".staged.v-1" / "profile.npz").write_bytes(whole)
        assert _wait_for(lambda: "phrase half of late not loaded" in caplog.text)
        assert describe(uri) == ["late:alpha-delta"]
        (late / "half" / "profile.npz").write_bytes(whole)         # now whole
        assert _wait_for(lambda: describe(uri) == ["late:alpha-delta", "late:half"])
        (late / "half" / "profile.npz").write_bytes(b"garbage")    # a damaged re-write: the old version stays
        assert _wait_for(lambda: caplog.text.count("phrase half of late not loaded") == 2)
        assert describe(uri) == ["late:alpha-delta", "late:half"]
    assert not any(r.exc_info for r in caplog.records)


async def _raw(uri: str, data: bytes, read: bool = True) -> bytes:
    """Send bytes as they are; return what comes back until the server closes (or b'' when not read).
    A reset counts as a close: the kernel sends one when the server closes with our bytes still unread."""
    reader, writer = await asyncio.open_connection(*address(uri))
    try:
        writer.write(data)
        await writer.drain()
        out = await asyncio.wait_for(reader.read(), 60) if read else b""
    except (ConnectionResetError, BrokenPipeError):
        out = b""
    writer.close()
    return out


HOSTILE = {
    "huge payload_length": b'{"type": "audio-chunk", "data": {"rate": 16000, "width": 2, "channels": 1}, '
                           b'"payload_length": 100000000000}\n',
    "bad JSON": b'{"type": "describe", \n',
    "negative length": b'{"type": "audio-chunk", "payload_length": -5}\n',
    "boolean length": b'{"type": "describe", "data_length": true}\n',
    "not an object": b'[1, 2, 3]\n',
    "no type": b'{"data": {}}\n',
    "unknown type": b'{"type": "transcribe"}\n',
    "nested JSON": b"[" * 10000 + b"\n",
    "long header": b'{"type": "describe", "x": "' + b"a" * 100000 + b'"}\n',
    "binary junk": bytes(range(256)) * 4 + b"\n",
    "odd chunk": b'{"type": "audio-chunk", "data": {"rate": 16000, "width": 2, "channels": 1}, "payload_length": 3}\nabc',
    "bad rate": b'{"type": "audio-start", "data": {"rate": 1, "width": 2, "channels": 1}}\n',
    "names not strings": b'{"type": "detect", "data": {"names": [1]}}\n',
}


def test_hostile_frames_close_only_their_connection(served, caplog):
    """Each closes its own connection with one log line and no traceback, while a well-behaved client that
    stays connected through all of it still gets its detection; a wrong payload_length is never waited for."""
    y, _ = stream(POSITIVE, seed=5)
    pcm = pcm16(y)

    async def go():
        async with AsyncTcpClient(*address(served)) as good:
            await good.write_event(Detect(names=["me:alpha-delta"]).event())
            await good.write_event(AudioStart(rate=SR, width=2, channels=1).event())
            half = len(pcm) // 2
            await good.write_event(AudioChunk(rate=SR, width=2, channels=1, audio=pcm[:half].tobytes()).event())
            replies = [await _raw(served, data) for data in HOSTILE.values()]
            await _raw(served, b'{"type": "audio-chunk", "data": {"rate": 16000, "width": 2, "channels": 1}, '
                               b'"payload_length": 32000}\n' + b"\0" * 1000, read=False)   # gone mid-chunk
            await good.write_event(AudioChunk(rate=SR, width=2, channels=1, audio=pcm[half:].tobytes()).event())
            await good.write_event(AudioStop().event())
            await good.write_event(Ping().event())
            events = []
            while (e := await good.read_event()) is not None and not Pong.is_type(e.type):
                events.append(e)
            return replies, events

    with caplog.at_level(logging.INFO):
        replies, events = asyncio.run(asyncio.wait_for(go(), 300))
        assert _wait_for(lambda: "closed 1000 bytes into a body of 32000" in caplog.text)
    assert replies == [b""] * len(HOSTILE)   # closed, without an answer
    assert [a[:2] for a in answers(events)] == [("me:alpha-delta", "me")]
    closed = [r.getMessage() for r in caplog.records if "connection closed" in r.getMessage()]
    assert len(closed) == len(HOSTILE) + 1, closed
    for reason in ("over the limit", "not JSON", "not a length", "unknown event type", "longer than", "not whole"):
        assert any(reason in m for m in closed), reason
    assert not any(r.exc_info for r in caplog.records) and "Traceback" not in caplog.text


def test_idle_and_slow_clients_time_out(personal_profile, caplog):
    cfg = Config(serve=ServeConfig(idle_timeout_s=0.3, frame_timeout_s=0.3))
    with caplog.at_level(logging.INFO), running(Household({"me": personal_profile}, "balanced", cfg), cfg) as uri:
        assert asyncio.run(_raw(uri, b"")) == b""                                  # says nothing: closed
        slow = b'{"type": "audio-chunk", "data": {"rate": 16000, "width": 2, "channels": 1}, "payload_length": 320}\n'
        assert asyncio.run(_raw(uri, slow + b"\0" * 10)) == b""                  # never finishes its chunk
    assert "idle for 0.3 s" in caplog.text and "not sent within 0.3 s" in caplog.text


def test_a_client_that_never_reads_is_dropped(personal_profile, caplog):
    """Pings whose Pongs are never read: the server drops the client once a write has waited write_timeout_s
    (the client sees a reset or an end), and serves the others."""
    cfg = Config(serve=ServeConfig(write_timeout_s=0.5, max_queued_events=10))
    ping = Ping(text="x" * 200).event()
    frame = (json.dumps({"type": ping.type, "data": ping.data}) + "\n").encode()

    async def flood(uri: str) -> str:
        reader, writer = await asyncio.open_connection(*address(uri))
        try:
            for _ in range(2000):                                  # up to 500 MB: far past any socket buffer
                writer.write(frame * 1000)
                await asyncio.wait_for(writer.drain(), 60)
            return "never dropped"
        except (ConnectionError, OSError):
            return "dropped"
        finally:
            writer.transport.abort()

    with caplog.at_level(logging.INFO), running(Household({"me": personal_profile}, "balanced", cfg), cfg) as uri:
        assert asyncio.run(flood(uri)) == "dropped"
        assert describe(uri) == ["me:alpha-delta"]                # the server goes on
    assert "does not read what it is sent (0.5 s); connection closed" in caplog.text


def test_frames_read_as_wyoming_writes_them():
    async def frames(data: bytes, cfg: ServeConfig = ServeConfig()):
        reader = asyncio.StreamReader(limit=cfg.max_header_bytes + 1)
        reader.feed_data(data)
        reader.feed_eof()
        out = []
        while (e := await read_frame(reader, cfg)) is not None:
            out.append(e)
        return out

    chunk = AudioChunk(rate=SR, width=2, channels=1, audio=b"\1\2" * 50, timestamp=7).event()
    header = {"type": chunk.type, "version": "1.5.4", "data_length": 0, "payload_length": 100}
    data = json.dumps(chunk.data).encode()
    header["data_length"] = len(data)
    [e] = asyncio.run(frames(json.dumps(header).encode() + b"\n" + data + chunk.payload))
    assert (e.type, e.data, e.payload) == (chunk.type, chunk.data, chunk.payload)
    with pytest.raises(FrameError, match="over the limit"):
        asyncio.run(frames(b'{"type": "x", "data_length": 10}\n', ServeConfig(max_data_bytes=5)))
    with pytest.raises(FrameError, match="closed 2 bytes into a body of 10"):
        asyncio.run(frames(b'{"type": "x", "payload_length": 10}\nab'))


def test_listens_on_loopback_unless_told(personal_profile):
    assert default_uri(DEFAULT) == "tcp://127.0.0.1:10400"
    cfg = Config(serve=ServeConfig(port=0))
    with running(Household({"me": personal_profile}, "balanced", cfg), cfg, default_uri(cfg)) as uri:
        assert address(uri)[0] == "127.0.0.1"


@pytest.mark.e2e
def test_kws_serve_command(personal_profile, second_person, tmp_path):
    """The command as a user runs it: defaults from config.py (port 0 here: any free one), --profiles given
    twice, Describe, SIGTERM."""
    p = subprocess.Popen([sys.executable, "-m", "kws", "serve", "--profiles", f"me={personal_profile}",
                          "--set", "serve.port=0", "--profiles", str(second_person)], stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                         env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        lines = []
        for line in p.stderr:
            lines.append(line)
            if m := re.search(r"on (tcp://\S+):", line):
                break
        assert m, "".join(lines)
        assert m.group(1).startswith("tcp://127.0.0.1:")
        assert describe(m.group(1)) == ["me:alpha-delta", "you:bravo-omega"]
    finally:
        p.send_signal(signal.SIGTERM)
        rest = p.communicate(timeout=60)[1]
    assert p.returncode == 0, rest
    assert "Traceback" not in "".join(lines) + rest
    assert "--profiles" in subprocess.run([sys.executable, "-m", "kws", "serve", "--help"], capture_output=True,
                                          text=True).stdout


@pytest.mark.e2e
def test_workers_share_the_port_answer_the_same_and_stop_together(personal_profile, tmp_path):
    """--workers 2: two processes behind one port; each connection gets the same answers as one
    process gives; a killed worker is started again; SIGTERM to the parent ends them all."""
    p = subprocess.Popen([sys.executable, "-m", "kws", "serve", "--profiles", f"me={personal_profile}", "--workers", "2",
                          "--set", "serve.port=0"], stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                         env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines: list[str] = []
    try:
        for line in p.stderr:
            lines.append(line)
            if m := re.search(r"worker processes \(pids (\d+) (\d+)\) accept on (tcp://\S+)", line):
                break
        assert m, "".join(lines)
        workers, uri = [int(m.group(1)), int(m.group(2))], m.group(3)
        y, _ = stream(POSITIVE, seed=5)
        pcm = pcm16(y)
        first = answers(session(uri, pcm, names=["me:alpha-delta"])[1])
        assert len(first) == 1 and first[0][:2] == ("me:alpha-delta", "me")
        for _ in range(3):
            assert answers(session(uri, pcm, names=["me:alpha-delta"])[1]) == first
        threading.Thread(target=lambda: lines.extend(p.stderr), daemon=True).start()
        os.kill(workers[0], signal.SIGKILL)
        assert _wait_for(lambda: any("starting it again" in x for x in lines), 30), "".join(lines)
        for _ in range(3):
            assert describe(uri) == ["me:alpha-delta"]
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(60)
        time.sleep(0.2)
    rest = ""
    assert p.returncode == 0, "".join(lines)
    assert "Traceback" not in "".join(lines) + rest
    for pid in workers[1:]:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]


@pytest.mark.e2e
def test_workers_on_a_unix_socket(personal_profile, tmp_path):
    """--workers 2 behind a unix socket (a satellite on the same machine): Describe answered on every
    connection, whichever worker takes it; SIGTERM ends them all."""
    from wyoming.client import AsyncUnixClient
    path = tmp_path / "kws.sock"
    p = subprocess.Popen([sys.executable, "-m", "kws", "serve", "--profiles", f"me={personal_profile}", "--workers", "2",
                          "--uri", f"unix://{path}"], stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                         env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines: list[str] = []
    try:
        for line in p.stderr:
            lines.append(line)
            if "accept on unix://" in line:
                break
        assert path.exists(), "".join(lines)
        threading.Thread(target=lambda: lines.extend(p.stderr), daemon=True).start()

        async def go() -> list[str]:
            async with AsyncUnixClient(str(path)) as c:
                await c.write_event(Describe().event())
                return sorted(m.name for m in Info.from_event(await c.read_event()).wake[0].models)
        for _ in range(4):
            assert asyncio.run(asyncio.wait_for(go(), 60)) == ["me:alpha-delta"]
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(60)
    assert p.returncode == 0, "".join(lines)
    assert "Traceback" not in "".join(lines)
