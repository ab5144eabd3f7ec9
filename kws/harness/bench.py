"""`python -m kws bench`: how fast and how big, measured the way the platform runs us.

1. Processes: enrollment.sh and predict.sh per speaker, fresh processes as on the platform:
   wall seconds (process start included), peak RSS and CPU of each; predict real-time factor.
2. Start-up: predict.sh on an empty folder (interpreter, imports, nothing to score).
3. Model load, in this process: imports, speaker-encoder weights, impostor cohort, calibrations.
4. Stages, in this process: CPU seconds per stage over every test clip, as audio seconds per
   CPU second (audio read, VAD, features, DTW, speaker encoder, voiceprint scoring).
Writes everything to OUTPUT_DIR/bench.json and prints a table.
"""
from __future__ import annotations

import json
import logging
import platform as host
import resource
import tempfile
import time
from pathlib import Path

from kws.config import DEFAULT, REPO_ROOT
from kws.harness.local_platform import read_labels, read_predictions, run_step, speakers_of, wav_seconds

log = logging.getLogger(__name__)
BUDGET = DEFAULT.budget


def default_task_set(output_dir: Path) -> tuple[Path, Path]:
    practice = REPO_ROOT.parent / "shared" / "data" / "practice"
    if (practice / "data").is_dir():
        return practice / "data", practice / "solution"
    from kws.harness.demo import demo_task_set
    root = demo_task_set(output_dir / "demo_tasks")
    return root / "data", root / "solution"


def process_runs(dataset_dir: Path, speakers: list[str], code_dir: Path, out: Path) -> dict:
    runs, audio = {}, {}
    for s in speakers:
        work = out / "work" / s
        enroll = run_step(["bash", str(code_dir / "enrollment.sh"), str(dataset_dir / s / "enroll"), str(work)],
                          BUDGET.enroll_per_speaker_s, out / "logs" / f"{s}.enroll.log")
        audio[s] = sum(wav_seconds(p) for p in (dataset_dir / s / "test").glob("*.wav"))
        predict = run_step(["bash", str(code_dir / "predict.sh"), str(dataset_dir / s / "test"), str(work),
                            str(out / "predictions" / f"{s}.txt")], BUDGET.predict_base_s + BUDGET.predict_per_audio_s * audio[s],
                           out / "logs" / f"{s}.predict.log")
        runs[s] = {"enroll": _step(enroll), "predict": _step(predict), "test_audio_s": round(audio[s], 2)}
        log.info("%s: enrollment %.2f s, predict %.2f s for %.0f s of audio", s, enroll.seconds, predict.seconds,
                 audio[s])
    with tempfile.TemporaryDirectory() as empty:
        start = run_step(["bash", str(code_dir / "predict.sh"), empty, str(out / "work" / speakers[0]),
                          str(Path(empty) / "p.txt")], BUDGET.predict_base_s, out / "logs" / "startup.log")
    total_audio = sum(audio.values())
    return {
        "speakers": runs,
        "predict_rtf": round(sum(r["predict"]["seconds"] for r in runs.values()) / max(total_audio, 1e-9), 4),
        "enroll_s_per_speaker": round(sum(r["enroll"]["seconds"] for r in runs.values()) / len(runs), 3),
        "peak_rss_mb": {"enroll": max(r["enroll"]["max_rss_mb"] for r in runs.values()),
                        "predict": max(r["predict"]["max_rss_mb"] for r in runs.values())},
        "process_start_s": round(start.seconds, 3),
        "test_audio_s": round(total_audio, 1),
    }


def _step(r) -> dict:
    return {"seconds": round(r.seconds, 3), "max_rss_mb": r.max_rss_mb, "cpu_s": r.cpu_s, "ok": r.returncode == 0}


def model_load() -> dict:
    """Cold load times in this process (bench runs first thing, so nothing is loaded yet)."""
    t = time.perf_counter()
    from kws.app import commands as pipeline
    from kws.scoring.cohort import load_cohort
    from kws.config import DEFAULT
    from kws.nn.encoder import load_ge2e, load_multitask
    t_import = time.perf_counter() - t
    t = time.perf_counter()
    if DEFAULT.detect.voiceprint != "encoder":
        load_ge2e()
    if DEFAULT.detect.voiceprint != "ge2e" or DEFAULT.features.frontend == "encoder":
        load_multitask()
    t_models = time.perf_counter() - t
    t = time.perf_counter()
    load_cohort(cfg=DEFAULT.features, voiceprint=DEFAULT.detect.voiceprint)
    t_cohort = time.perf_counter() - t
    t = time.perf_counter()
    pipeline.load_tiers()
    t_cal = time.perf_counter() - t
    return {"imports_s": round(t_import, 3), "speaker_encoder_s": round(t_models, 3), "cohort_s": round(t_cohort, 3),
            "calibrations_s": round(t_cal, 3), "rss_after_load_mb": round(_self_rss_mb(), 1)}


def _self_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def stage_throughput(dataset_dir: Path, speakers: list[str], out: Path) -> dict:
    """Audio seconds per CPU second of each stage, scoring every test clip in this process."""
    from kws import stages
    from kws.signal.audio import audio_seconds, list_wavs
    from kws.config import DEFAULT
    from kws.app.commands import score_files
    from kws.scoring.profile import SpeakerProfile
    stages.reset()
    audio = 0.0
    for s in speakers:
        paths = list_wavs(dataset_dir / s / "test")
        audio += sum(audio_seconds(p) for p in paths)
        score_files(SpeakerProfile.load(out / "work" / s), paths, DEFAULT)
    cpu = dict(stages.CPU_SECONDS)
    return {"audio_s": round(audio, 1),
            "cpu_s": {k: round(v, 3) for k, v in cpu.items()},
            "audio_s_per_cpu_s": {k: round(audio / v, 1) if v > 0 else None for k, v in cpu.items()},
            "rss_after_scoring_mb": round(_self_rss_mb(), 1)}


def accuracy(dataset_dir: Path, solution_dir: Path, speakers: list[str], out: Path) -> dict | None:
    from kws.harness.metrics import average, score_speaker
    if not solution_dir.is_dir():
        return None
    results = [score_speaker(s, read_labels(solution_dir, s), read_predictions(out / "predictions" / f"{s}.txt"))
               for s in speakers]
    return {"score": round(average(results), 4),
            "mr": round(sum(r.mr for r in results) / len(results), 4),
            "far": round(sum(r.far for r in results) / len(results), 4)}


def run_bench(dataset_dir: Path | None, solution_dir: Path | None, output_dir: Path,
              max_speakers: int | None = None, code_dir: Path = REPO_ROOT) -> dict:
    output_dir = output_dir.resolve()
    load = model_load()   # first: measures a cold load
    if dataset_dir is None:
        dataset_dir, solution_dir = default_task_set(output_dir)
    dataset_dir = Path(dataset_dir).resolve()
    solution_dir = Path(solution_dir).resolve() if solution_dir else dataset_dir.parent / "solution"
    speakers = speakers_of(dataset_dir)[:max_speakers]
    result = {"dataset": str(dataset_dir), "speakers_n": len(speakers), "host": host.node(),
              "cpu_count": _cpus(), "when": time.strftime("%Y-%m-%d %H:%M:%S"),
              "model_load": load, "processes": process_runs(dataset_dir, speakers, code_dir, output_dir),
              "stages": stage_throughput(dataset_dir, speakers, output_dir),
              "accuracy": accuracy(dataset_dir, solution_dir, speakers, output_dir)}
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "bench.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return result


def _cpus() -> int:
    import os
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def format_bench(r: dict) -> str:
    p, s, m = r["processes"], r["stages"], r["model_load"]
    lines = [f"bench on {r['speakers_n']} speakers, {p['test_audio_s']:.0f} s of test audio, {r['cpu_count']} CPUs",
             f"  predict real-time factor (process start included)  {p['predict_rtf']:.4f}",
             f"  enrollment seconds per speaker                     {p['enroll_s_per_speaker']:.2f}",
             f"  process start (predict.sh, empty folder)           {p['process_start_s']:.2f} s",
             f"  peak RSS: enrollment / predict                     {p['peak_rss_mb']['enroll']:.0f} / "
             f"{p['peak_rss_mb']['predict']:.0f} MB",
             f"  model load: imports {m['imports_s']:.2f} s, speaker encoder {m['speaker_encoder_s']:.2f} s, cohort {m['cohort_s']:.2f} s, "
             f"calibrations {m['calibrations_s']:.3f} s",
             "  stage        CPU s   audio s per CPU s"]
    for k in ("audio", "vad", "features", "dtw", "encoder", "voiceprint"):
        if k in s["cpu_s"]:
            lines.append(f"  {k:<11} {s['cpu_s'][k]:6.2f}   {s['audio_s_per_cpu_s'][k]:>8.0f}")
    if r.get("accuracy"):
        a = r["accuracy"]
        lines.append(f"  accuracy: score {a['score']:.3f} (MR {a['mr']:.3f}, FAR {a['far']:.4f})")
    return "\n".join(lines)
