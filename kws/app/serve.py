"""kws serve: the enrolled wake words as a Wyoming service, for Home Assistant and voice satellites.

    Describe                     -> Info: one WakeProgram, a WakeModel per enrolled phrase ("person:phrase")
    Detect {names}               the models the next stream listens for (every model when none)
    AudioStart, AudioChunk ..., AudioStop
                                 -> Detection {name, timestamp: ms from AudioStart to the phrase's end,
                                    speaker: whose profile fired}, once per utterance; NotDetected at
                                    AudioStop when nothing fired since AudioStart
    Ping                         -> Pong, once the audio sent before it has been through the detector

One asyncio loop reads and writes every connection, frames through wyoming_frames' limits. One worker
thread runs all detection and profile loading, in arrival order: the scoring code keeps process-wide
caches (encoder.cached_trunk) that are not made for threads, and a second thread measured no faster
(20 dev streams' first 30 s in 1024-sample blocks: 15.5 s wall on one thread, 16.3 s on two; the GIL).
Anything wrong with what a client sends closes that connection, with one log line; nobody else notices.
With serve.workers = N > 1 (`--workers N`), N forked processes each run all of the above: N cores' worth
of streams. The parent binds, accepts every connection and hands it to the worker with the fewest open
ones, restarts a worker that dies and passes SIGTERM / SIGINT on.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import stat
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlparse

from kws.app.household import Household
from kws.app.wake_stream import WIDTHS, Heard, WakeStream
from kws.app.wyoming_frames import FrameError, read_frame, write_event
from kws.config import Config

log = logging.getLogger(__name__)

KNOWN = ("describe", "detect", "audio-start", "audio-chunk", "audio-stop", "ping")


class ClientError(Exception):
    """What a client sent or failed to do, in words for the log: its connection is closed."""


def default_uri(cfg: Config) -> str:
    return f"tcp://{cfg.serve.host}:{cfg.serve.port}"


def parse_uri(uri: str) -> tuple[str, str | int]:
    """tcp://HOST:PORT -> (host, port); unix:///PATH -> ("unix", path)."""
    u = urlparse(uri)
    if u.scheme == "tcp" and u.hostname and u.port is not None:
        return u.hostname, u.port
    if u.scheme == "unix" and u.path:
        return "unix", u.path
    raise ValueError(f"--uri {uri!r}: use tcp://HOST:PORT (e.g. tcp://127.0.0.1:10400) or unix:///PATH")


def info_event(household: Household) -> Any:
    """Info for Describe: this program and every model it serves now."""
    import kws
    from wyoming.info import Attribution, Info, WakeModel, WakeProgram
    ours = Attribution(name="kws", url="")
    models = [WakeModel(name=m, description=f"{phrase} ({person.name})", phrase=phrase, languages=[],
                        attribution=Attribution(name=person.name, url=""), installed=True, version=None)
              for m, (person, phrase) in sorted(household.models().items())]
    program = WakeProgram(name="kws", description="kws: personalised wake words, enrolled from five takes",
                          attribution=ours, installed=True, version=kws.__version__, models=models)
    return Info(wake=[program]).event()


def _audio_format(data: dict, cfg: Config) -> tuple[int, int, int]:
    rate, width, channels = data.get("rate"), data.get("width"), data.get("channels")
    if type(rate) is not int or not cfg.audio.min_rate <= rate <= cfg.serve.max_rate:
        raise ClientError(f"rate {ascii(rate)[:20]}: not {cfg.audio.min_rate}-{cfg.serve.max_rate} Hz")
    if width not in WIDTHS or type(width) is not int:
        raise ClientError(f"width {ascii(width)[:20]}: not 1-4 bytes")
    if type(channels) is not int or not 1 <= channels <= cfg.serve.max_channels:
        raise ClientError(f"channels {ascii(channels)[:20]}: not 1-{cfg.serve.max_channels}")
    return rate, width, channels


class Connection:
    """One client: a reader (frames -> a queue of at most max_queued_s of audio) and a worker side
    (queue -> detector in the service's thread -> events back)."""

    def __init__(self, service: "Service", reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.service, self.cfg, self.reader, self.writer = service, service.cfg, reader, writer
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "unix client"
        self.items: deque[tuple] = deque()
        self.queued_s = 0.0
        self.changed = asyncio.Event()   # an item came, or room was made
        self.names: set[str] | None = None
        self.stream: WakeStream | None = None
        self.streaming = False           # AudioStart seen (or implied), AudioStop not yet

    async def run(self) -> None:
        reading, working = asyncio.create_task(self._read()), asyncio.create_task(self._work())
        try:
            done, _ = await asyncio.wait({reading, working}, return_when=asyncio.FIRST_COMPLETED)
            if reading in done and reading.exception() is None:
                await working            # the client is done sending: answer what it sent, then close
            for task in (reading, working):
                if task.done() and task.exception() is not None:
                    raise task.exception()
        except (FrameError, ClientError) as e:
            log.warning("%s: %s; connection closed", self.peer, e)
        except (ConnectionError, TimeoutError, asyncio.TimeoutError, OSError) as e:
            log.info("%s: gone (%s); connection closed", self.peer, type(e).__name__)
        except Exception as e:   # a bug of ours: still only this connection goes, in one line (-v: the traceback)
            log.error("%s: internal error (%s: %s); connection closed", self.peer, type(e).__name__, str(e)[:200])
            log.debug("%s: internal error", self.peer, exc_info=True)
        finally:
            for task in (reading, working):
                task.cancel()
            await asyncio.gather(reading, working, return_exceptions=True)
            await _close(self.writer)
        log.debug("%s: closed", self.peer)

    async def _send(self, event: Any) -> None:
        try:
            await write_event(self.writer, event, self.cfg.serve.write_timeout_s)
        except (TimeoutError, asyncio.TimeoutError):
            raise ClientError(f"does not read what it is sent ({self.cfg.serve.write_timeout_s:g} s)") from None

    def _put(self, item: tuple, seconds: float = 0.0) -> None:
        self.items.append(item)
        self.queued_s += seconds
        self.changed.set()

    async def _read(self) -> None:
        from wyoming.wake import Detect
        while (event := await read_frame(self.reader, self.cfg.serve)) is not None:
            kind, data = event.type, event.data
            if kind not in KNOWN:
                raise ClientError(f"unknown event type {ascii(kind)[:60]}")
            if kind == "describe":
                await self._send(info_event(self.service.household))
            elif kind == "detect":
                names = Detect.from_event(event).names
                if names is not None and (not isinstance(names, list) or not all(isinstance(n, str) for n in names)):
                    raise ClientError("detect: 'names' is not a list of strings")
                self.names = set(names) if names else None
            elif kind == "audio-start":
                _audio_format(data, self.cfg)   # refused here, before any audio, when it is no format
                self._start()
            elif kind == "audio-chunk":
                rate, width, channels = _audio_format(data, self.cfg)
                audio = event.payload or b""
                if len(audio) % (width * channels):
                    raise ClientError(f"audio-chunk of {len(audio)} bytes: not whole {width}-byte samples "
                                      f"of {channels} channel(s)")
                if not self.streaming:   # no AudioStart: the first chunk starts the stream
                    self._start()
                self._put(("chunk", audio, rate, width, channels), len(audio) / (width * channels * rate))
            elif kind == "audio-stop":
                if self.streaming:
                    self._put(("stop",))
                    self.streaming = False
            elif kind == "ping":
                self._put(("ping", data.get("text") if isinstance(data.get("text"), str) else None))
            # Full: stop reading, so that TCP slows the sender, until the worker side has caught up.
            while self.queued_s > self.cfg.serve.max_queued_s or len(self.items) > self.cfg.serve.max_queued_events:
                self.changed.clear()
                await self.changed.wait()
        self._put(("end",))

    def _start(self) -> None:
        if self.streaming:   # a second AudioStart ends the stream before it (without an answer of its own)
            self._put(("drop",))
        known = set(self.service.household.models())
        if self.names is not None and not self.names & known:
            log.warning("%s: detect names %s: none is served (served: %s)", self.peer,
                        ", ".join(sorted(self.names))[:200], ", ".join(sorted(known))[:200])
        self._put(("start", self.service.household.people, self.names))
        self.streaming = True

    async def _work(self) -> None:
        from wyoming.ping import Pong
        loop = asyncio.get_running_loop()
        while True:
            while not self.items:
                self.changed.clear()
                await self.changed.wait()
            item = self.items.popleft()
            self.changed.set()   # room for the reader
            if item[0] == "chunk":   # every chunk queued behind it goes along: one detector call for all
                chunks = [item[1:]]
                while self.items and self.items[0][0] == "chunk":
                    chunks.append(self.items.popleft()[1:])
                heard = await loop.run_in_executor(self.service.pool, self.stream.feed, chunks) if self.stream else []
                self.queued_s = max(0.0, self.queued_s - sum(len(a) / (w * c * r) for a, r, w, c in chunks))
                self.changed.set()
                await self._tell(heard)
            elif item[0] == "start":
                people, names = item[1], item[2]
                self.stream = await loop.run_in_executor(
                    self.service.pool, WakeStream, people.values(), names, self.cfg.stream.refractory_s)
            elif item[0] == "stop" and self.stream is not None:
                stream, self.stream = self.stream, None
                await self._tell(await loop.run_in_executor(self.service.pool, stream.stop), stream, last=True)
            elif item[0] == "drop":
                self.stream = None
            elif item[0] == "ping":
                await self._send(Pong(text=item[1]).event())
            elif item[0] == "end":
                return

    async def _tell(self, heard: list[Heard], stream: WakeStream | None = None, last: bool = False) -> None:
        from wyoming.wake import Detection, NotDetected
        for h in heard:
            log.info("%s: %s at %.2f s (decided at %.2f s, fused %.2f)", self.peer, h.model, h.timestamp_ms / 1000,
                     h.detection.decided_s, h.detection.fused)
            await self._send(Detection(name=h.model, timestamp=h.timestamp_ms, speaker=h.speaker).event())
        if last and stream is not None and stream.heard == 0:
            await self._send(NotDetected().event())


async def _close(writer: asyncio.StreamWriter) -> None:
    """Close, and abort when a client that does not read keeps the goodbye from going out."""
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), 1.0)
    except (asyncio.TimeoutError, TimeoutError, ConnectionError, OSError):
        writer.transport.abort()


class Service:
    """The server: the household, the worker thread, the listening socket and the reload timer."""

    def __init__(self, household: Household, cfg: Config):
        self.household, self.cfg = household, cfg
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="kws-serve")
        self.clients: set[asyncio.Task] = set()
        self.server: asyncio.AbstractServer | None = None
        self._watch: asyncio.Task | None = None
        self.adopted: set[asyncio.Future] = set()   # connections handed over by the parent (serve.workers > 1)

    async def start(self, uri: str, handoff: socket.socket | None = None) -> str:
        """Listen on uri (tcp port 0: any free one), or take the connections the parent process accepted on
        it and hands over on `handoff` (serve.workers > 1); returns the uri listened on."""
        host, port = parse_uri(uri)
        limit = self.cfg.serve.max_header_bytes + 1   # the reader's line limit: a header and its newline
        if handoff is not None:
            self._adopt(handoff, limit)
            bound = uri
        else:
            sock, bound = listening_socket(uri)
            start = asyncio.start_unix_server if host == "unix" else asyncio.start_server
            self.server = await start(self._client, sock=sock, limit=limit)
        self._watch = asyncio.create_task(self._reload())
        models = self.household.models()
        log.info("serving %d wake word(s) of %d people on %s: %s", len(models), len(self.household.people), bound,
                 ", ".join(sorted(models)) or "none yet")
        return bound

    def _adopt(self, handoff: socket.socket, limit: int) -> None:
        """Connections arrive as file descriptors on `handoff`; a byte goes back as each one ends, so that the
        parent can give the next one to the worker with the fewest."""
        loop = asyncio.get_running_loop()
        handoff.setblocking(False)

        async def one(conn: socket.socket) -> None:
            try:
                reader, writer = await asyncio.open_connection(sock=conn, limit=limit)
                await self._client(reader, writer)
            finally:
                with contextlib.suppress(OSError):
                    handoff.send(b"-")

        def ready() -> None:
            try:
                msg, fds, _, _ = socket.recv_fds(handoff, 64, 64)
            except (BlockingIOError, InterruptedError):
                return
            if not msg and not fds:              # the parent is gone: stop taking connections
                loop.remove_reader(handoff.fileno())
                return
            for fd in fds:
                conn = socket.socket(fileno=fd)
                conn.setblocking(False)
                task = asyncio.ensure_future(one(conn))
                self.adopted.add(task)            # held until done: the loop keeps only weak references
                task.add_done_callback(self.adopted.discard)

        loop.add_reader(handoff.fileno(), ready)

    async def close(self) -> None:
        """Stop listening, end every connection, then the worker (after the job it is on)."""
        if self._watch:
            self._watch.cancel()
        if self.server:
            self.server.close()
        for task in self.clients:
            task.cancel()
        await asyncio.gather(*self.clients, return_exceptions=True)
        await asyncio.get_running_loop().run_in_executor(None, self.pool.shutdown)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self.clients) >= self.cfg.serve.max_clients:
            log.warning("%d clients connected already (serve.max_clients); one more refused", len(self.clients))
            await _close(writer)
            return
        task = asyncio.current_task()
        self.clients.add(task)
        try:
            await Connection(self, reader, writer).run()
        except asyncio.CancelledError:
            pass   # close() ends connections so; asyncio's stream callback would log a cancelled handler's traceback
        finally:
            self.clients.discard(task)

    async def _reload(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.cfg.serve.reload_interval_s)
            try:
                await loop.run_in_executor(self.pool, self.household.refresh)
            except Exception as e:   # the next look tries again; the versions served stay
                log.error("reloading profiles: %s: %s", type(e).__name__, str(e)[:200])


@contextlib.contextmanager
def running(household: Household, cfg: Config, uri: str = "tcp://127.0.0.1:0") -> Iterator[str]:
    """The service in a thread of its own (tests, embedding): yields the uri it listens on."""
    loop, started = asyncio.new_event_loop(), threading.Event()
    service, bound = Service(household, cfg), []

    def main() -> None:
        asyncio.set_event_loop(loop)
        bound.append(loop.run_until_complete(service.start(uri)))
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=main, name="kws-serve-loop", daemon=True)
    thread.start()
    started.wait(60)
    try:
        yield bound[0]
    finally:
        asyncio.run_coroutine_threadsafe(service.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def serve(profiles: list[str], uri: str | None, sensitivity: str | float, cfg: Config) -> int:
    """kws serve: load everyone, listen until SIGINT or SIGTERM."""
    from kws.app.household import parse_profiles
    try:
        import wyoming  # noqa: F401
    except ImportError:
        from kws.errors import KwsError
        raise KwsError("kws serve needs the wyoming package: pip install 'kws[serve]'") from None
    if cfg.serve.workers < 1:
        from kws.errors import UsageError
        raise UsageError(f"--workers {cfg.serve.workers}: give 1 or more")
    uri = uri or default_uri(cfg)
    host, _ = parse_uri(uri)
    if host not in ("unix", "127.0.0.1", "localhost", "::1"):
        log.warning("listening on %s: anyone who can reach it can stream audio to it and learn who spoke "
                    "(docs/serve.md)", host)
    household = Household({k: Path(v) for k, v in parse_profiles(profiles).items()}, sensitivity, cfg)
    if cfg.serve.workers > 1:
        return _serve_workers(household, cfg, uri)
    asyncio.run(_serve_until_stopped(household, cfg, uri))
    return 0


async def _serve_until_stopped(household: Household, cfg: Config, uri: str, handoff: socket.socket | None = None) -> None:
    service, stop = Service(household, cfg), asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await service.start(uri, handoff)
    await stop.wait()
    log.info("stopping")
    await service.close()


def listening_socket(uri: str) -> tuple[socket.socket, str]:
    """The bound, listening socket of uri, and the uri it is bound to (tcp port 0: a free one). A unix path
    that holds a stale socket is replaced, as asyncio's own unix server does; any other file there is not."""
    host, port = parse_uri(uri)
    if host == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(os.stat(str(port)).st_mode):
                os.unlink(str(port))
        sock.bind(str(port))
        sock.listen(512)
        bound = uri
    else:
        sock = socket.create_server((host, int(port)), family=socket.AF_INET6 if ":" in host else socket.AF_INET,
                                    backlog=512)
        bound = f"tcp://{host}:{sock.getsockname()[1]}"
    sock.setblocking(False)
    return sock, bound


class _Worker:
    """A forked worker process: its pid, the parent's end of its hand-off socket, its open connections."""

    def __init__(self, index: int, household: Household, cfg: Config, bound: str, close_in_child: list[socket.socket]):
        self.index, self.open = index, 0
        self.handoff, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.pid = os.fork()
        if self.pid == 0:                  # the worker: its own loop, detection thread and reload timer
            code = 0
            try:
                for s in (*close_in_child, self.handoff):
                    s.close()
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                asyncio.run(_serve_until_stopped(household, cfg, bound, child_end))
            except BaseException:
                log.exception("worker %d failed", index)
                code = 1
            finally:
                os._exit(code)
        child_end.close()


def _serve_workers(household: Household, cfg: Config, uri: str) -> int:
    """serve.workers forked processes; the profiles, loaded once here, are shared copy-on-write. This process
    accepts every connection and hands it to the worker with the fewest open ones (a shared listening socket
    measured lopsided: one worker took twice the other's load). A worker that dies is started again."""
    import selectors
    lsock, bound = listening_socket(uri)
    sel = selectors.DefaultSelector()
    sel.register(lsock, selectors.EVENT_READ, None)
    workers: dict[int, _Worker] = {}
    stopping = False

    def spawn(i: int) -> None:
        w = _Worker(i, household, cfg, bound, [lsock, *(x.handoff for x in workers.values())])
        workers[w.pid] = w
        sel.register(w.handoff, selectors.EVENT_READ, w)

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    for i in range(cfg.serve.workers):
        spawn(i)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    log.info("%d worker processes (pids %s) accept on %s", cfg.serve.workers, " ".join(map(str, workers)), bound)
    while not stopping:
        for key, _ in sel.select(timeout=0.5):
            if key.data is None:
                with contextlib.suppress(BlockingIOError, InterruptedError):
                    conn, _ = lsock.accept()
                    w = min(workers.values(), key=lambda x: (x.open, x.index))
                    try:
                        socket.send_fds(w.handoff, [b"+"], [conn.fileno()])
                        w.open += 1
                    except OSError as e:       # that worker is going; the client reconnects
                        log.warning("handing a connection to worker %d: %s", w.index, e)
                    conn.close()
            else:
                w = key.data
                with contextlib.suppress(BlockingIOError, InterruptedError, ConnectionError):
                    w.open = max(0, w.open - w.handoff.recv(4096).count(b"-"))
        while True:                             # reap and restart workers that died
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if (w := workers.pop(pid, None)) is not None:
                sel.unregister(w.handoff)
                w.handoff.close()
                if not stopping:
                    log.error("worker %d (pid %d) ended with status %d; starting it again", w.index, pid,
                              os.waitstatus_to_exitcode(status))
                    time.sleep(1.0)            # a worker that cannot start at all must not spin the machine
                    spawn(w.index)
    for w in workers.values():
        with contextlib.suppress(ProcessLookupError):
            os.kill(w.pid, signal.SIGTERM)
    for w in list(workers.values()):
        os.waitpid(w.pid, 0)
    lsock.close()
    return 0
