"""Kill predict, enrollment and `kws enroll --replace` with SIGKILL at uniform random moments and check
what they leave (issue 13) -> a JSON result file.

    nice -n 10 .venv/bin/python scripts/kill_harness.py --speaker ../shared/data/practice/data/P0001 \
        --other ../shared/data/practice/data/P0002 --out docs/kill_harness.json

- predict: --predict runs, each killed at a uniform moment in [0, its normal duration]; every other
  run starts with a stale file already in place (legal lines for other names plus a garbage line).
  Afterwards the prediction file must exist, be legal, and name exactly the test wavs.
- enrollment: WORK_DIR holds the --other speaker's profile; enrollment.sh of --speaker is killed.
  Afterwards the folder must hold the old profile whole, the new one whole, or no profile in use
  (the old one set aside as stale, which predict refuses with exit 2 and an all-0 file).
- kws enroll --replace: a phrase enrolled from --other's takes is replaced by --speaker's takes and
  killed. Afterwards the phrase must be the old one (profile and clips) or the new one, whole.
Every run is a fresh process group (bash + python), killed with os.killpg.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kws.harness.metrics import parse_predictions
from kws.safefile import prediction_wavs

ROOT = Path(__file__).resolve().parent.parent

PY = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable


def spawn(cmd: list[str]) -> subprocess.Popen:
    return subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


def run_killed(cmd: list[str], at: float) -> tuple[bool, float]:
    """Run cmd, SIGKILL its process group `at` seconds after the spawn; (finished before the kill, wall)."""
    t0 = time.monotonic()
    p = spawn(cmd)
    while time.monotonic() - t0 < at and p.poll() is None:
        time.sleep(min(0.002, max(0.0, at - (time.monotonic() - t0))))
    done = p.poll() is not None
    if not done:
        os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    return done, time.monotonic() - t0


def duration(cmd: list[str], runs: int = 3) -> float:
    """The normal duration: median wall time of `runs` unkilled runs."""
    walls = []
    for _ in range(runs):
        t0 = time.monotonic()
        r = subprocess.run(cmd, capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        if r.returncode:
            sys.exit(f"{cmd}: exit {r.returncode}\n{r.stderr.decode(errors='replace')}")
        walls.append(time.monotonic() - t0)
    return sorted(walls)[len(walls) // 2]


def profile_state(folder: Path) -> str:
    """'average' array bytes of the profile in use, 'stale' if none is in use but one was set aside, else why not."""
    from kws.errors import ProfileError
    from kws.scoring.profile import SpeakerProfile
    try:
        p = SpeakerProfile.load(folder)
    except ProfileError as e:
        return "stale" if "did not finish" in str(e) else f"error: {e}"
    return p.average.tobytes().hex()[:64] + str(p.clips)


def phrase_state(folder: Path, phrase: str) -> str:
    """The phrase's profile and the clips beside it, as one string (or why it is not whole)."""
    from kws.errors import ProfileError
    from kws.scoring.profile import SpeakerProfile
    target = folder / phrase
    try:
        p = SpeakerProfile.load(target)
    except ProfileError as e:
        return f"error: {e}"
    clips = sorted(c.name for c in (target / "clips").iterdir()) if (target / "clips").is_dir() else []
    return p.average.tobytes().hex()[:64] + str(sorted(p.clips)) + str(clips)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--speaker", type=Path, required=True, help="task folder with enroll/ and test/")
    ap.add_argument("--other", type=Path, required=True, help="another speaker: the profile being replaced")
    ap.add_argument("--predict", type=int, default=200)
    ap.add_argument("--enroll", type=int, default=50)
    ap.add_argument("--replace", type=int, default=20)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--out", type=Path, default=Path("bench_output/kill_harness.json"))
    a = ap.parse_args()
    rng = random.Random(a.seed)
    tmp = Path(tempfile.mkdtemp(prefix="kws-kill-"))
    result: dict = {"seed": a.seed, "speaker": str(a.speaker), "other": str(a.other)}
    try:
        test, enroll, other = a.speaker / "test", a.speaker / "enroll", a.other / "enroll"
        names = {p.name for p in prediction_wavs(test)}
        work = tmp / "work"
        predict = ["bash", str(ROOT / "predict.sh"), str(test), str(work)]
        t_enroll = duration(["bash", str(ROOT / "enrollment.sh"), str(enroll), str(work)])
        t_predict = duration(predict + [str(tmp / "p.txt")])

        # predict
        bad: dict[str, int] = {"missing": 0, "stale": 0, "illegal": 0, "incomplete": 0}
        first_bad, finished = [], 0
        for i in range(a.predict):
            out = tmp / f"pred{i}.txt"
            if i % 2:
                out.write_text("".join(f"old{k}.wav\t1\n" for k in range(5)) + "garbage line\n")
            at = rng.uniform(0, t_predict)
            done, _ = run_killed(predict + [str(out)], at)
            finished += done
            kind = None
            if not out.exists():
                kind = "missing"
            else:
                preds = parse_predictions(out.read_text(encoding="utf-8", errors="replace"))
                if preds is None:
                    kind = "stale" if i % 2 and "garbage" in out.read_text() else "illegal"
                elif set(preds) != names:
                    kind = "stale" if any(n.startswith("old") for n in preds) else "incomplete"
            if kind:
                bad[kind] += 1
                first_bad.append({"run": i, "kill_at_s": round(at, 4), "kind": kind})
        result["predict"] = {"runs": a.predict, "with_stale_file": a.predict // 2, "normal_s": round(t_predict, 3),
                             "finished_before_kill": finished, **bad, "bad_runs": first_bad}

        # enrollment over another speaker's profile
        ref = tmp / "ref"
        subprocess.run(["bash", str(ROOT / "enrollment.sh"), str(other), str(ref / "old")], check=True,
                       capture_output=True)
        old_state = profile_state(ref / "old")
        new_state = profile_state(work)
        counts = {"old": 0, "new": 0, "stale_refused": 0, "other": 0}
        others, checked_predict, finished = [], 0, 0
        for i in range(a.enroll):
            w = tmp / f"ework{i}"
            shutil.copytree(ref / "old", w)
            at = rng.uniform(0, t_enroll)
            finished += run_killed(["bash", str(ROOT / "enrollment.sh"), str(enroll), str(w)], at)[0]
            s = profile_state(w)
            if s == old_state:
                counts["old"] += 1
            elif s == new_state:
                counts["new"] += 1
            elif s == "stale":
                out = w / "p.txt"
                r = subprocess.run(predict[:2] + [str(test), str(w), str(out)], capture_output=True, text=True)
                preds = parse_predictions(out.read_text()) if out.exists() else None
                ok = r.returncode == 2 and preds is not None and set(preds) == names and set(preds.values()) == {0}
                checked_predict += 1
                counts["stale_refused" if ok else "other"] += 1
            else:
                counts["other"] += 1
                others.append({"run": i, "kill_at_s": round(at, 4), "state": s[:300]})
            shutil.rmtree(w, ignore_errors=True)
        result["enrollment"] = {"runs": a.enroll, "normal_s": round(t_enroll, 3), "finished_before_kill": finished,
                                **counts,
                                "stale_checked_with_predict": checked_predict, "other_runs": others}

        # kws enroll --replace
        person = tmp / "person"
        kws = [PY, "-m", "kws", "enroll", "--name", "wake", "--out"]
        for d in ("old", "ref"):
            subprocess.run(kws + [str(person / d)] + sorted(map(str, other.glob("*.wav"))), check=True,
                           capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        t_replace = duration(kws + [str(person / "ref"), "--replace", "--force"] + sorted(map(str, enroll.glob("*.wav"))))
        old_p, new_p = phrase_state(person / "old", "wake"), phrase_state(person / "ref", "wake")
        counts = {"old": 0, "new": 0, "other": 0}
        others, finished = [], 0
        for i in range(a.replace):
            d = tmp / f"p{i}"
            shutil.copytree(person / "old", d, symlinks=True)
            at = rng.uniform(0, t_replace)
            finished += run_killed(kws + [str(d), "--replace", "--force"] + sorted(map(str, enroll.glob("*.wav"))), at)[0]
            s = phrase_state(d, "wake")
            kind = "old" if s == old_p else "new" if s == new_p else "other"
            counts[kind] += 1
            if kind == "other":
                others.append({"run": i, "kill_at_s": round(at, 4), "state": s[:300]})
            shutil.rmtree(d, ignore_errors=True)
        result["enroll_replace"] = {"runs": a.replace, "normal_s": round(t_replace, 3), "finished_before_kill": finished,
                                    **counts, "other_runs": others}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: {kk: vv for kk, vv in v.items() if not kk.endswith("runs") or kk == "runs"}
                      if isinstance(v, dict) else v for k, v in result.items()}, indent=1))


if __name__ == "__main__":
    main()
