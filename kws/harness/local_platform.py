"""The local platform: runs a submission's three scripts like the Auto-KWS ingestion does, then scores it.

Standard library only (it drives the model in child processes), so ``run_local_test.py``
works with any Python 3.10+.

Budgets (cumulative, enforced by killing the process group):
  initialize.sh  1800 s
  enrollment.sh  300 s x speakers
  predict.sh     60 s + 0.25 x total test audio seconds
"""
from __future__ import annotations

import csv
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import wave
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kws.config import REPO_ROOT, BudgetConfig
from kws.harness.metrics import (SpeakerResult, average, bad_line, errors_by_kind, misses_by_snr, parse_labels,
                      parse_predictions, score_speaker)
from kws.app.progress import Progress

log = logging.getLogger(__name__)

_B = BudgetConfig()
INIT_BUDGET_S = _B.init_s
ENROLL_BUDGET_PER_SPEAKER_S = _B.enroll_per_speaker_s
PREDICT_BASE_S = _B.predict_base_s
PREDICT_PER_AUDIO_S = _B.predict_per_audio_s
DEADLINE_ENV = _B.deadline_env   # epoch seconds by which the child must be done (predict degrades to fit)


def wav_seconds(path: Path) -> float:
    """Duration from the WAV header; 0 for files the header reader cannot parse."""
    try:
        with wave.open(str(path)) as w:
            return w.getnframes() / float(w.getframerate())
    except (wave.Error, EOFError, OSError, ZeroDivisionError):
        return 0.0


@dataclass
class StepResult:
    seconds: float
    returncode: int | None      # None: killed on budget
    log_tail: str = ""
    max_rss_mb: float = 0.0     # peak resident memory of the process (the script execs python)
    cpu_s: float = 0.0          # user + system CPU seconds


def run_step(cmd: list[str], budget_s: float, log_path: Path, env: dict | None = None) -> StepResult:
    """Run cmd in its own process group; kill the whole group when the budget runs out."""
    t0 = time.monotonic()
    if budget_s <= 0:
        return StepResult(0.0, None, "no budget left")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", encoding="utf-8") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, **(env or {})})
        # os.wait4 rather than proc.wait: it also returns the child's peak memory and CPU time.
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                rc = os.waitstatus_to_exitcode(status)
                proc.returncode = rc
                break
            if time.monotonic() - t0 > budget_s:
                os.killpg(proc.pid, signal.SIGKILL)
                _, _, usage = os.wait4(proc.pid, 0)
                proc.returncode, rc = -9, None
                break
            time.sleep(0.005)
    tail = log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
    return StepResult(time.monotonic() - t0, rc, tail, round(usage.ru_maxrss / 1024, 1),
                      round(usage.ru_utime + usage.ru_stime, 3))


def read_labels(solution_dir: Path, speaker: str) -> dict[str, int]:
    return parse_labels((solution_dir / f"{speaker}_test_labels.txt").read_text(encoding="utf-8"))


def read_predictions(path: Path) -> dict[str, int] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        log.warning("%s: unreadable prediction file (%s): scored 1.0", path, e)
        return None
    if bad := bad_line(text):
        log.warning("%s: %s: scored 1.0", path, bad)
    return parse_predictions(text)


def read_meta(test_meta: str | Path) -> list[dict]:
    with open(test_meta, encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def read_kinds(test_meta: str | Path | None) -> dict[tuple[str, str], str]:
    return {(r["task"], r["file"]): r["kind"] for r in read_meta(test_meta)} if test_meta else {}


def break_down(report: "Report", results: list[SpeakerResult], test_meta: str | Path | None) -> None:
    """Errors by clip kind, and misses by SNR bucket, from test_meta.tsv (kind, label, snr per clip)."""
    if not test_meta:
        return
    rows = read_meta(test_meta)
    report.errors_by_kind = {k: dict(v) for k, v in errors_by_kind(results, read_kinds(test_meta)).items()}
    print_kinds(report.errors_by_kind)
    if rows and "snr" in rows[0]:
        snr = {(r["task"], r["file"]): float(r["snr"]) if r["snr"] else None for r in rows if r["label"] == "1"}
        report.misses_by_snr = misses_by_snr(results, snr)
        print("misses by SNR: " + ", ".join(f"{k} {v['misses']}/{v['positives']}"
                                             for k, v in report.misses_by_snr.items()))


@dataclass
class Report:
    average_score: float
    speakers: list[dict]
    seconds: dict = field(default_factory=dict)
    test_audio_seconds: float = 0.0
    predict_rtf: float | None = None
    budgets: dict = field(default_factory=dict)
    errors_by_kind: dict = field(default_factory=dict)
    misses_by_snr: dict = field(default_factory=dict)  # SNR bucket -> positives, misses, miss_rate
    processes: dict = field(default_factory=dict)     # per speaker and stage: seconds, peak RSS, CPU
    peak_rss_mb: dict = field(default_factory=dict)
    jobs: int = 1


def format_table(results: list[SpeakerResult]) -> str:
    lines = [f"{'speaker':<10} {'score':>6} {'MR':>6} {'FAR':>7}  note"]
    for r in results:
        lines.append(f"{r.speaker:<10} {r.score:6.3f} {r.mr:6.3f} {r.far:7.4f}  {r.error}")
    lines.append(f"{'average':<10} {average(results):6.3f} {sum(r.mr for r in results) / max(len(results), 1):6.3f} "
                 f"{sum(r.far for r in results) / max(len(results), 1):7.4f}")
    return "\n".join(lines)


def write_report(report: Report, output_dir: Path) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "scores.txt").write_text(f"score: {report.average_score:.6f}\n", encoding="utf-8")
    (output_dir / "report.json").write_text(json.dumps(asdict(report), indent=1) + "\n", encoding="utf-8")


def score_all(speakers: list[str], solution_dir: Path, predictions: dict[str, Path],
              errors: dict[str, str] | None = None) -> list[SpeakerResult]:
    errors = errors or {}
    return [score_speaker(s, read_labels(solution_dir, s), read_predictions(predictions[s]), errors.get(s, ""))
            for s in speakers]


def speakers_of(dataset_dir: Path) -> list[str]:
    if not dataset_dir.is_dir():
        raise FileNotFoundError(f"{dataset_dir}: dataset folder not found")
    found = sorted(p.name for p in dataset_dir.iterdir() if (p / "test").is_dir())
    if not found:
        raise FileNotFoundError(f"{dataset_dir}: no <SPK>/test folders")
    return found


PREDICTION_NAMES = ("{}.txt", "{}_predictions.txt")   # ours; the official starting kit's


def prediction_file(predictions_dir: Path, speaker: str) -> Path:
    """`<SPK>.txt`, else the starting kit's `<SPK>_predictions.txt` (the first name when neither exists)."""
    found = [p for p in (predictions_dir / n.format(speaker) for n in PREDICTION_NAMES) if p.is_file()]
    if len(found) > 1:
        log.warning("%s: both %s; scoring %s", speaker, " and ".join(p.name for p in found), found[0].name)
    return found[0] if found else predictions_dir / PREDICTION_NAMES[0].format(speaker)


def evaluate_folder(dataset_dir: str | Path, solution_dir: str | Path, predictions_dir: str | Path,
                    test_meta: str | Path | None = None, output_dir: str | Path | None = None) -> Report:
    """Score existing `<predictions_dir>/<SPK>.txt` (or `<SPK>_predictions.txt`) files the way the platform does."""
    dataset_dir, solution_dir, predictions_dir = Path(dataset_dir), Path(solution_dir), Path(predictions_dir)
    speakers = speakers_of(dataset_dir)
    results = score_all(speakers, solution_dir, {s: prediction_file(predictions_dir, s) for s in speakers})
    report = Report(average(results), [asdict(r) for r in results])
    print(format_table(results))
    break_down(report, results, test_meta)
    if output_dir:
        write_report(report, Path(output_dir))
    return report


def print_kinds(by_kind: dict) -> None:
    for key in ("false_alarms", "misses"):
        items = sorted(by_kind.get(key, {}).items(), key=lambda kv: -kv[1])
        print(f"{key.replace('_', ' ')} by kind: " + (", ".join(f"{k} {v}" for k, v in items) or "none"))


class Budgets:
    """Cumulative stage budgets shared by parallel speakers: a step may use what is left, split
    evenly among the steps of its stage that are running at the time."""

    def __init__(self, limits: dict[str, float]):
        self.limits = limits
        self.spent = {k: 0.0 for k in limits}
        self.running = {k: 0 for k in limits}
        self.lock = threading.Lock()

    def start(self, stage: str) -> float:
        with self.lock:
            self.running[stage] += 1
            return (self.limits[stage] - self.spent[stage]) / self.running[stage]

    def finish(self, stage: str, seconds: float) -> None:
        with self.lock:
            self.running[stage] -= 1
            self.spent[stage] += seconds


def run_platform(dataset_dir: str | Path, solution_dir: str | Path, code_dir: str | Path,
                 output_dir: str | Path = "scoring_output", test_meta: str | Path | None = None,
                 jobs: int = 1) -> Report:
    """initialize once; enrollment then predict per speaker (fresh processes, `jobs` speakers at a time);
    score everything."""
    dataset_dir, solution_dir = Path(dataset_dir).resolve(), Path(solution_dir).resolve()
    code_dir, output_dir = Path(code_dir).resolve(), Path(output_dir).resolve()
    speakers = speakers_of(dataset_dir)
    test_seconds = sum(wav_seconds(p) for s in speakers for p in (dataset_dir / s / "test").glob("*.wav"))
    budgets = Budgets({"initialize": INIT_BUDGET_S, "enrollment": ENROLL_BUDGET_PER_SPEAKER_S * len(speakers),
                       "predict": PREDICT_BASE_S + PREDICT_PER_AUDIO_S * test_seconds})
    logs, preds_dir, work_root = output_dir / "logs", output_dir / "predictions", output_dir / "work"
    preds_dir.mkdir(parents=True, exist_ok=True)
    errors: dict[str, str] = {}
    processes: dict[str, dict] = {}

    def step(stage: str, script: str, args: list[str], log_name: str, speaker: str = "") -> bool:
        left = budgets.start(stage)
        deadline = {DEADLINE_ENV: f"{time.time() + left:.3f}"}
        r = run_step(["bash", str(code_dir / script), *args], left, logs / log_name, deadline)
        budgets.finish(stage, r.seconds)
        processes.setdefault(speaker or stage, {})[stage] = {
            "seconds": round(r.seconds, 3), "max_rss_mb": r.max_rss_mb, "cpu_s": r.cpu_s, "returncode": r.returncode}
        if r.returncode != 0:
            why = "killed: budget exhausted" if r.returncode is None else f"exit code {r.returncode}"
            log.warning("%s %s: %s\n%s", script, speaker, why, r.log_tail[-800:])
            if speaker:
                errors[speaker] = f"{stage} {why}"
        return r.returncode == 0

    def speaker_run(s: str) -> None:
        work = work_root / s
        work.mkdir(parents=True, exist_ok=True)
        step("enrollment", "enrollment.sh", [str(dataset_dir / s / "enroll"), str(work)], f"{s}.enroll.log", s)
        step("predict", "predict.sh", [str(dataset_dir / s / "test"), str(work), str(preds_dir / f"{s}.txt")],
             f"{s}.predict.log", s)
        bar.update(note=f"{s} done; budgets spent: enrollment {budgets.spent['enrollment']:.1f} s, "
                        f"predict {budgets.spent['predict']:.1f} s")

    step("initialize", "initialize.sh", [], "initialize.log")
    with Progress(len(speakers), "speakers", every_s=0 if len(speakers) <= 20 else 10) as bar, \
            ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:   # threads only wait on child processes
        list(pool.map(speaker_run, speakers))
    spent = budgets.spent
    results = score_all(speakers, solution_dir, {s: preds_dir / f"{s}.txt" for s in speakers}, errors)
    report = Report(average(results), [asdict(r) for r in results], {k: round(v, 2) for k, v in spent.items()},
                    round(test_seconds, 2), round(spent["predict"] / test_seconds, 4) if test_seconds else None,
                    {k: round(v, 1) for k, v in budgets.limits.items()})
    report.processes = {k: processes[k] for k in ["initialize", *speakers] if k in processes}
    report.peak_rss_mb = {stage: max((v[stage]["max_rss_mb"] for v in processes.values() if stage in v), default=0.0)
                          for stage in ("initialize", "enrollment", "predict")}
    report.jobs = jobs
    print(format_table(results))
    break_down(report, results, test_meta)
    print(f"time: initialize {spent['initialize']:.1f} s, enrollment {spent['enrollment']:.1f} s "
          f"({spent['enrollment'] / len(speakers):.2f} s/speaker), predict {spent['predict']:.1f} s "
          f"for {test_seconds:.0f} s of audio (real-time factor {report.predict_rtf}); peak RSS "
          f"enrollment {report.peak_rss_mb['enrollment']:.0f} MB, predict {report.peak_rss_mb['predict']:.0f} MB")
    write_report(report, output_dir)
    print(f"wrote {output_dir / 'scores.txt'} and {output_dir / 'report.json'}")
    return report


def main(argv: list[str] | None = None) -> int:
    import argparse
    ap = argparse.ArgumentParser(description="Local Auto-KWS platform: run the three scripts per speaker and score.")
    ap.add_argument("--dataset_dir", default=None, help="<SPK>/{enroll,test} folders; default: a built demo set")
    ap.add_argument("--solution_dir", default=None, help="<SPK>_test_labels.txt files")
    ap.add_argument("--code_dir", default=str(REPO_ROOT))
    ap.add_argument("--output_dir", default="scoring_output")
    ap.add_argument("--test_meta", default=None, help="test_meta.tsv: break errors down by kind")
    ap.add_argument("--jobs", type=int, default=1, help="speakers evaluated in parallel processes")
    ap.add_argument("--demo", default="shipped", choices=["shipped", "dev", "espeak"],
                    help="without --dataset_dir: shipped (default: demo/, real recordings in the repository), "
                         "dev (../shared dev split via make_tasks.py) or espeak (synthetic voices, needs espeak-ng)")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                    help="a configuration setting for every enrollment.sh and predict.sh (kws --set; via $KWS_SET)")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if a.set:
        from kws.config import SETTINGS_ENV, with_settings
        try:
            with_settings(a.set)   # a typo fails here, not in every child
        except ValueError as e:
            ap.error(str(e))
        os.environ[SETTINGS_ENV] = " ".join([os.environ.get(SETTINGS_ENV, ""), *a.set]).strip()
    if a.dataset_dir is None:
        from kws.harness.demo import demo_task_set
        from kws.errors import KwsError
        try:
            root = demo_task_set(Path(a.output_dir) / f"demo_tasks_{a.demo}", a.demo)
        except KwsError as e:
            log.error("%s", e)
            return 2
        a.dataset_dir, a.solution_dir = str(root / "data"), str(root / "solution")
        if a.test_meta is None and (root / "test_meta.tsv").is_file():
            a.test_meta = str(root / "test_meta.tsv")
    elif a.solution_dir is None:
        ap.error("--solution_dir is required with --dataset_dir")
    report = run_platform(a.dataset_dir, a.solution_dir, a.code_dir, a.output_dir, a.test_meta, a.jobs)
    return 0 if report.speakers else 1


if __name__ == "__main__":
    sys.exit(main())
