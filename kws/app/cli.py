"""Command line: argument parsing only; each command calls one function elsewhere.

    python -m kws enroll ENROLL_DIR WORK_DIR
    python -m kws enroll --name PHRASE --out PROFILE_DIR take1.wav ... [--add | --replace]
    python -m kws enroll --name PHRASE --out PROFILE_DIR --record N     (from the microphone)
    python -m kws detect PROFILE_DIR LONG.wav [--sensitivity S] [--json] [--threads N]
    python -m kws listen PROFILE_DIR [--sensitivity S] [--json] [--device D] [--seconds S]
    python -m kws serve --profiles [NAME=]DIR ... [--uri tcp://127.0.0.1:10400] [--sensitivity S]
    python -m kws report RUN_DIR --solution_dir S [--test_meta M] [--clip SPK/FILE]
    python -m kws predict TEST_DIR WORK_DIR PREDICTION_FILE
    python -m kws evaluate --dataset_dir D --solution_dir S [--predictions_dir P] [--test_meta M]
    python -m kws bench [--dataset_dir D] [--output_dir O] [--speakers N]
    python -m kws classify train --data TRAIN_DIR --budget S [--test TEST_DIR] | predict | evaluate
    python -m kws check
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

log = logging.getLogger("kws")


def _enroll(a: argparse.Namespace) -> int:
    if a.out is not None:
        return _enroll_takes(a)
    if len(a.paths) != 2 or a.name or a.add or a.replace or a.force or a.record:
        log.error("enroll takes ENROLL_DIR WORK_DIR, or --name PHRASE --out PROFILE_DIR with take files")
        return 2
    from kws.app.commands import enroll_folder
    enroll_folder(*a.paths, cfg=_config(a))
    return 0


def _enroll_takes(a: argparse.Namespace) -> int:
    import tempfile

    from kws.app.api import Profile
    from kws.enrollment.quality import format_report
    if not a.name:
        log.error("--out needs --name PHRASE: the name of the phrase these takes say")
        return 2
    if not a.paths and not a.record:
        log.error("give the take files, or --record N to record N takes from the microphone")
        return 2
    with tempfile.TemporaryDirectory(prefix="kws-takes-") as tmp:
        takes = list(a.paths) + (_record_takes(a, Path(tmp)) if a.record else [])
        profile, quality = Profile.enroll(a.out, a.name, takes, add=a.add, replace=a.replace, force=a.force,
                                          cfg=_config(a))
    print(format_report(quality))
    print(f"enrolled '{a.name}' from {len(profile.phrases[a.name].clips)} take(s) in {profile.folder / a.name}; "
          f"phrases in {profile.folder}: {', '.join(profile.phrases)}")
    return 0


def _record_takes(a: argparse.Namespace, folder: Path) -> list[Path]:
    """--record N: N takes from the microphone, each followed by the quality report of the takes so far."""
    import soundfile as sf

    from kws.config import SAMPLE_RATE
    from kws.app.mic import record_take, sounddevice
    from kws.enrollment.quality import assess_files, format_report
    if a.record < 1 or a.take_seconds <= 0:
        raise ValueError("--record needs a count of 1 or more and --take-seconds more than 0")
    sd, paths = sounddevice(), []
    for i in range(1, a.record + 1):
        prompt = f"take {i}/{a.record}: say '{a.name}' ({a.take_seconds:g} s)"
        if sys.stdin.isatty():
            input(f"{prompt}: press Enter, then speak ")
        else:
            print(f"{prompt}: recording now", file=sys.stderr, flush=True)
        y = record_take(a.take_seconds, a.device, sd)
        paths.append(folder / f"take{i:02d}.wav")
        sf.write(paths[-1], y, SAMPLE_RATE, subtype="PCM_16")
        print(format_report(assess_files(paths)), flush=True)
    return paths


def _print_detections(stream, blocks, as_json: bool, wall_clock: bool = False) -> int:
    """Print each detection as it is decided; returns how many. Ctrl-C stops, after the speech in progress."""
    import json
    import time

    from kws.app.stream import detect_blocks, format_detection

    def show(d) -> None:
        if as_json:
            print(json.dumps(d.to_json() | ({"time": time.strftime("%Y-%m-%dT%H:%M:%S")} if wall_clock else {}),
                             ensure_ascii=False), flush=True)
        else:
            print((time.strftime("%H:%M:%S  ") if wall_clock else "") + format_detection(d), flush=True)

    n = 0
    try:
        for d in detect_blocks(stream, blocks):
            show(d)
            n += 1
    except KeyboardInterrupt:
        log.info("stopped (Ctrl-C) after %.1f s of audio", stream.seconds)
        for d in stream.flush():
            show(d)
            n += 1
    return n


def _listen(a: argparse.Namespace) -> int:
    from kws.app.api import Detector
    from kws.app.mic import microphone_blocks, sounddevice
    sd = sounddevice()   # before the profile loads: the commonest mistake says so at once
    det = Detector(a.profile_dir, a.sensitivity, cfg=_config(a))
    stream = det.stream(live=True)
    blocks = microphone_blocks(det.cfg.stream.live_block_s, a.device, a.seconds, sd)
    print(f"listening for {', '.join(det.profile.phrases)} (Ctrl-C stops)", file=sys.stderr, flush=True)
    n = _print_detections(stream, blocks, a.json, wall_clock=True)
    log.info("%d detection(s) in %.1f s of audio", n, stream.seconds)
    return 0


def _detect(a: argparse.Namespace) -> int:
    import time
    if a.threads < 1:
        log.error("--threads must be 1 or more")
        return 2
    # BLAS pools read this at import, so it is set before numpy loads (everything runs on numpy).
    from kws import limit_blas_threads
    limit_blas_threads(a.threads, force=True)
    from kws.app.api import Detector
    from kws.app.stream import read_blocks
    det = Detector(a.profile_dir, a.sensitivity, cfg=_config(a))
    t0, stream = time.perf_counter(), det.stream()
    n = _print_detections(stream, read_blocks(a.audio, det.cfg.stream.block_s), a.json)
    wall = time.perf_counter() - t0
    log.info("%d detection(s) in %.1f s of audio; %.1f s wall, real-time factor %.4f (%d thread(s))",
             n, stream.seconds, wall, wall / max(stream.seconds, 1e-9), a.threads)
    return 0


def _serve(a: argparse.Namespace) -> int:
    from kws.app.serve import serve
    from kws.config import with_settings
    cfg = _config(a)
    if a.workers is not None:
        cfg = with_settings({"serve.workers": a.workers}, cfg)
    return serve(a.profiles, a.uri, a.sensitivity, cfg)


def _classify(a: argparse.Namespace) -> int:
    from kws.app import classify
    cfg = _config(a)
    if a.action == "train":
        return classify.classify_train(a.data, a.labels, a.budget, a.model, a.test, a.predictions, a.start, cfg)
    if a.action == "predict":
        if not a.data or not a.out:
            log.error("classify predict needs --model, --data TEST_DIR and --out FILE")
            return 2
        return classify.classify_predict(a.model, a.data, a.out, cfg)
    if not a.predictions or not a.truth:
        log.error("classify evaluate needs --predictions DIR and --truth FILE")
        return 2
    return classify.classify_evaluate(a.predictions, a.truth, a.budget, a.out, a.plot, cfg)


def _device(text: str) -> int | str:
    """--device: a PortAudio device number, or (part of) its name."""
    return int(text) if text.isdigit() else text


def _config(a: argparse.Namespace):
    """The defaults of kws/config.py with $KWS_SET, then each --set, applied."""
    from kws.config import settings_from_env, with_settings
    cfg = with_settings(settings_from_env() + list(getattr(a, "set", None) or []))
    log.debug("configuration: %s", cfg)
    return cfg


def _report(a: argparse.Namespace) -> int:
    from kws.harness.report import write_report
    page = write_report(a.run_dir, a.solution_dir, a.test_meta, a.dataset_dir, a.clip, a.out)
    print(page)
    return 0


def _predict(a: argparse.Namespace) -> int:
    # First, before numpy or any model loads: the complete all-0 file, so that a kill from the first
    # milliseconds on leaves a whole, legal file (and no stale one from an earlier run).
    from kws.safefile import write_safe_predictions
    paths = write_safe_predictions(a.test_dir, a.prediction_file)
    from kws.app.commands import predict_folder
    predict_folder(a.test_dir, a.work_dir, a.prediction_file, cfg=_config(a), deadline=a.deadline, paths=paths)
    return 0


def _evaluate(a: argparse.Namespace) -> int:
    from kws.harness.local_platform import evaluate_folder
    evaluate_folder(a.dataset_dir, a.solution_dir, a.predictions_dir, a.test_meta, a.output_dir)
    return 0


def _bench(a: argparse.Namespace) -> int:
    from pathlib import Path

    from kws.harness.bench import format_bench, run_bench
    r = run_bench(Path(a.dataset_dir) if a.dataset_dir else None, Path(a.solution_dir) if a.solution_dir else None,
                  Path(a.output_dir), a.speakers)
    print(format_bench(r))
    print(f"wrote {Path(a.output_dir) / 'bench.json'}")
    return 0


def _check(a: argparse.Namespace) -> int:
    from kws.app.commands import check_pretrained
    check_pretrained(_config(a))
    return 0


def _serve_help() -> str:
    """kws serve --help: what it answers, and its limits as kws/config.py sets them (their one owner)."""
    from kws.config import AudioConfig, ServeConfig
    c = ServeConfig()
    return f"""\
Serves every phrase enrolled in the --profiles folders as a Wyoming wake-word service. Home Assistant:
Settings > Devices & services > Add integration > Wyoming Protocol, this host and port; the phrases are
then wake words ("person:phrase") to pick in an Assist pipeline. It answers Describe with Info, and after
Detect, AudioStart and AudioChunks (any rate, width and channel count) sends one Detection per utterance
(the model's name, the phrase's end in ms from AudioStart, the speaker whose profile fired), or
NotDetected at AudioStop when nothing fired. It decides as kws detect does on the same audio.
A phrase enrolled or re-enrolled into a served folder is picked up within {c.reload_interval_s:g} s, whole (never
half-written); a folder that fails to load is logged and its last version kept.

Limits, per connection (kws/config.py ServeConfig; --set serve.FIELD=VALUE changes them):
  header line {c.max_header_bytes} bytes, data block {c.max_data_bytes} bytes, audio chunk {c.max_payload_bytes} bytes;
  rate {AudioConfig.min_rate}-{c.max_rate} Hz, width 1-4 bytes, 1-{c.max_channels} channels;
  {c.max_queued_s:g} s of audio or {c.max_queued_events} events queued (beyond, the socket is not read: TCP slows the sender);
  {c.idle_timeout_s:g} s idle; {c.frame_timeout_s:g} s for a frame's body once its header came; {c.write_timeout_s:g} s for the
  client to read what it is sent; {c.max_clients} clients at once per worker process.
Malformed JSON, an unknown event type, a wrong length, a limit broken, a client that hangs up mid-frame
or never reads: one log line, and only that connection is closed.

It listens on {c.host} (this machine) unless --uri says otherwise: whoever reaches the port can stream
audio in and learn who spoke. docs/serve.md: exposing it, systemd, Home Assistant.
Needs the [serve] extra: pip install 'kws[serve]' (the wyoming package).

example: kws serve --profiles alice=/home/alice/kws bob=/home/bob/kws --uri tcp://127.0.0.1:{c.port}
"""


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="kws", description="Personalised wake-word spotting (Auto-KWS).")
    ap.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = ap.add_subparsers(dest="command", required=True)
    settable = argparse.ArgumentParser(add_help=False)
    settable.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                          help="override a default of kws/config.py, e.g. features.frontend=encoder, "
                               "detect.voiceprint=ge2e, detect.matcher=true, detect.set_norm=false, "
                               "stream.sensitivity_span=0.5 (repeatable; $KWS_SET holds more, space-separated)")
    p = sub.add_parser("enroll", parents=[settable], help="build a speaker profile from enrollment clips",
                       description="Platform form: enroll ENROLL_DIR WORK_DIR. Personal form: enroll --name PHRASE "
                                   "--out PROFILE_DIR take1.wav ... take5.wav (any format soundfile reads), which "
                                   "prints a quality report of the takes.")
    p.add_argument("paths", nargs="*", metavar="PATH", help="ENROLL_DIR WORK_DIR, or with --out: the take files")
    p.add_argument("--out", default=None, metavar="PROFILE_DIR",
                   help="a person's profile folder (one sub-folder per phrase)")
    p.add_argument("--name", default=None, metavar="PHRASE", help="the phrase's name, e.g. hey-kws")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--add", action="store_true", help="add these takes to an enrolled phrase and rebuild it")
    g.add_argument("--replace", action="store_true", help="enroll the phrase again from these takes only")
    p.add_argument("--force", action="store_true", help="save the phrase even when every take is unusable")
    p.add_argument("--record", type=int, default=0, metavar="N",
                   help="with --out: record N takes from the microphone (the [mic] extra), a quality report after each")
    p.add_argument("--take-seconds", type=float, default=3.0, help="length of each recorded take (default 3)")
    p.add_argument("--device", type=_device, default=None,
                   help="input device (number or name; default: the system default)")
    p.set_defaults(run=_enroll)
    p = sub.add_parser("detect", parents=[settable],
                       help="spot the enrolled phrases in a recording of any length, as it streams")
    p.add_argument("profile_dir", help="from enroll --out (or a platform WORK_DIR)")
    p.add_argument("audio", help="any length, any format soundfile reads")
    p.add_argument("--sensitivity", default="balanced",
                   help="fewest-false-alarms, balanced (default: the calibrated threshold) or fewest-misses; "
                        "or a number from 0 (fewest false alarms) to 1 (fewest misses)")
    p.add_argument("--json", action="store_true", help="one JSON object per detection (JSON Lines)")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    p.set_defaults(run=_detect)
    p = sub.add_parser("listen", parents=[settable],
                       help="spot the enrolled phrases live, from the default input device ([mic] extra)",
                       description="Streams from the microphone through the same detector as detect, printing each "
                                   "detection with the time of day and its place in the stream. Ctrl-C stops.")
    p.add_argument("profile_dir", help="from enroll --out (or a platform WORK_DIR)")
    p.add_argument("--sensitivity", default="balanced", help="as for detect")
    p.add_argument("--json", action="store_true", help="one JSON object per detection (JSON Lines)")
    p.add_argument("--device", type=_device, default=None,
                   help="input device (number or name; default: the system default)")
    p.add_argument("--seconds", type=float, default=None, help="stop after this much audio (default: until Ctrl-C)")
    p.set_defaults(run=_listen)
    p = sub.add_parser("serve", parents=[settable], formatter_class=argparse.RawDescriptionHelpFormatter,
                       help="serve the enrolled wake words over the Wyoming protocol (Home Assistant; [serve] extra)",
                       description=_serve_help())
    p.add_argument("--profiles", nargs="+", action="extend", required=True, metavar="[NAME=]DIR",
                   help="one profile folder per person (from enroll --out); the person is NAME, else the folder's "
                        "name, and is the speaker a detection names. Phrases enrolled into these folders later "
                        "are served without a restart (repeatable)")
    p.add_argument("--uri", default=None, metavar="URI",
                   help="tcp://HOST:PORT or unix:///PATH (default: tcp://SERVE.HOST:SERVE.PORT, i.e. "
                        "tcp://127.0.0.1:10400, this machine only)")
    p.add_argument("--sensitivity", default="balanced", help="as for detect, for every phrase served")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="processes sharing the port, one core each (default serve.workers = 1; a household "
                        "needs one; many satellites, one per core)")
    p.set_defaults(run=_serve)
    p = sub.add_parser("classify", parents=[settable], help="a speech classifier trained within a time budget "
                       "(the AutoSpeech protocol: train, predict, evaluate by ALC)",
                       description="train: a logistic regression on the frozen encoder's views, chosen by "
                                   "cross-validation on the training labels; anytime: it publishes predictions for "
                                   "--test early and better ones as it finds them, and stops before --budget. "
                                   "predict: the saved model on a folder. evaluate: NAUC per prediction file and "
                                   "the ALC of the learning curve (log time, t0 = classify.alc_t0_s).")
    p.add_argument("action", choices=("train", "predict", "evaluate"))
    p.add_argument("--data", default=None, help="train: a folder with a sub-folder of clips per class (or the root "
                                                "of --labels' paths); predict: the folder of clips to classify")
    p.add_argument("--labels", default=None, help="train: a path<TAB>label file instead of class folders")
    p.add_argument("--budget", type=float, default=300.0, help="seconds, counted from --start (default 300)")
    p.add_argument("--start", type=float, default=None,
                   help="epoch seconds the task started (the platform's clock; default: now)")
    p.add_argument("--model", default="classify_model", help="the model folder (train writes it, predict reads it)")
    p.add_argument("--test", default=None, help="train: a folder of unlabelled clips to publish predictions for")
    p.add_argument("--predictions", default=None,
                   help="train: where the predictions-NNN.tsv go (default MODEL/predictions); evaluate: read them")
    p.add_argument("--truth", default=None, help="evaluate: file<TAB>label, the answer key")
    p.add_argument("--out", default=None, help="predict: the prediction file; evaluate: a JSON of the results")
    p.add_argument("--plot", default=None, help="evaluate: the learning curve as a PNG ([report] extra)")
    p.set_defaults(run=_classify)
    p = sub.add_parser("report", help="HTML page with DET curves, score distributions and a DTW alignment of a run")
    p.add_argument("run_dir", help="the --output_dir of run_local_test.py")
    p.add_argument("--solution_dir", required=True)
    p.add_argument("--test_meta", default=None, help="test_meta.tsv: score distributions per kind of negative")
    p.add_argument("--dataset_dir", default=None,
                   help="test audio for the alignment plot; default SOLUTION_DIR/../data")
    p.add_argument("--clip", default=None, metavar="SPK/FILE", help="clip to align; default: the worst error")
    p.add_argument("--out", default=None, help="output folder (default RUN_DIR/report)")
    p.set_defaults(run=_report)
    p = sub.add_parser("predict", parents=[settable], help="write <file>\\t<0|1> for every test wav")
    p.add_argument("test_dir")
    p.add_argument("work_dir")
    p.add_argument("prediction_file")
    p.add_argument("--deadline", type=float, default=None,
                   help="epoch seconds by which to be done (default: $KWS_DEADLINE, else the folder's own budget)")
    p.set_defaults(run=_predict)
    p = sub.add_parser("evaluate", help="score a folder of prediction files like the platform")
    p.add_argument("--dataset_dir", required=True)
    p.add_argument("--solution_dir", required=True)
    p.add_argument("--predictions_dir", default="predictions",
                   help="<SPK>.txt or the starting kit's <SPK>_predictions.txt files (default: predictions)")
    p.add_argument("--test_meta", default=None, help="test_meta.tsv from make_tasks.py: errors by kind")
    p.add_argument("--output_dir", default=None, help="also write scores.txt and report.json here")
    p.set_defaults(run=_evaluate)
    p = sub.add_parser("bench", help="measure speed and memory like the platform; write bench.json")
    p.add_argument("--dataset_dir", default=None, help="task set data/ folder (default: the practice set, else a demo)")
    p.add_argument("--solution_dir", default=None, help="labels, for an accuracy line (default: beside data/)")
    p.add_argument("--output_dir", default="bench_output")
    p.add_argument("--speakers", type=int, default=None, help="only the first N speakers")
    p.set_defaults(run=_bench)
    p = sub.add_parser("check", parents=[settable], help="verify that the models and pretrained/ artefacts load")
    p.set_defaults(run=_check)
    return ap


def main(argv: list[str] | None = None) -> int:
    """The `kws` console command (and python -m kws)."""
    from kws import limit_blas_threads
    limit_blas_threads()   # before anything imports numpy: this module imports none at the top
    a = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if a.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    from kws.errors import KwsError
    try:
        return a.run(a)
    except (KwsError, ValueError, OSError) as e:   # ValueError: malformed labels; OSError: a path the user gave
        log.error("%s", e)
        return 2
