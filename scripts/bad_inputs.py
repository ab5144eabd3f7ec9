"""Bad input of every kind issue 13 names, run through the platform scripts and the CLI -> a Markdown table.

    nice -n 10 .venv/bin/python scripts/bad_inputs.py --speaker ../shared/data/practice/data/P0001 \
        --out docs/bad_inputs.md

Each case is one fresh process. Recorded: exit code, whether a traceback was printed, whether the
prediction file is complete and legal (for predict), the message's first error line, and wall time
against the folder's budget. tests/test_profile.py and tests/test_cli.py reuse TAMPERS and cli_cases.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

NPZ = "profile.npz"


def _rewrite(folder: Path, change: Callable[[dict, dict], None]) -> None:
    """Load the profile's members as plain arrays and metadata, change them, write the npz back."""
    with np.load(folder / NPZ, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays.pop("meta").tobytes())
    change(arrays, meta)
    if meta is not None:
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(folder / NPZ, **arrays)


def _meta_bytes(folder: Path, raw: bytes) -> None:
    with np.load(folder / NPZ, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["meta"] = np.frombuffer(raw, np.uint8)
    np.savez(folder / NPZ, **arrays)


def _add_member(folder: Path, name: str, header: bytes, size: int) -> None:
    """Append a member; `size` zero bytes after the header, deflated (a zip bomb when size is large)."""
    with zipfile.ZipFile(folder / NPZ, "a", compression=zipfile.ZIP_DEFLATED) as z:
        with z.open(name, "w", force_zip64=True) as f:
            f.write(header)
            chunk = bytes(1 << 20)
            for _ in range(size >> 20):
                f.write(chunk)


def _npy_header(shape: tuple, dtype: str = "<f4") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def _replace_member(folder: Path, name: str, header: bytes, size: int) -> None:
    with zipfile.ZipFile(folder / NPZ) as z:
        keep = {n: z.read(n) for n in z.namelist() if n != name}
    with zipfile.ZipFile(folder / NPZ, "w") as z:
        for n, b in keep.items():
            z.writestr(n, b)
    _add_member(folder, name, header, size)


def _set(key: str, value) -> Callable[[Path], None]:
    return lambda d: _rewrite(d, lambda a, m: m.__setitem__(key, value))


def _array(key: str, make: Callable[[np.ndarray], np.ndarray]) -> Callable[[Path], None]:
    return lambda d: _rewrite(d, lambda a, m: a.__setitem__(key, make(a[key])))


def _nan(x: np.ndarray) -> np.ndarray:
    x = x.copy()
    x.flat[0] = np.nan
    return x


# What a tampered or damaged profile looks like; each must give a ProfileError saying "enroll again".
TAMPERS: dict[str, Callable[[Path], None]] = {
    "metadata a top-level list": lambda d: _meta_bytes(d, b"[1, 2, 3]"),
    "metadata nested 200k deep": lambda d: _meta_bytes(d, b"[" * 200_000 + b"]" * 200_000),
    "metadata not JSON": lambda d: _meta_bytes(d, b"\xff\xfe garbage"),
    "zero templates": _set("n_templates", 0),
    "n_templates true (a bool)": _set("n_templates", True),
    "unknown metadata key": _set("run_me", "os.system"),
    "kw_enroll_mean a string": _set("kw_enroll_mean", "x"),
    "kw_enroll_mean NaN": _set("kw_enroll_mean", float("nan")),
    "spk_cohort_std infinite": _set("spk_cohort_std", float("inf")),
    "clips not a list": _set("clips", "a.wav"),
    "version 1": _set("version", 1),
    "model fingerprint of other weights": _set("model_fingerprint", "0123456789ab"),
    "1-D template": _array("template_0", lambda x: x[:, 0].copy()),
    "empty template (0 frames)": _array("template_0", lambda x: x[:0]),
    "integer template": _array("template_0", lambda x: x.astype(np.int32)),
    "complex template": _array("template_0", lambda x: x.astype(np.complex64)),
    "NaN template": _array("template_0", _nan),
    "template of another width": _array("template_1", lambda x: x[:, :5].copy()),
    "NaN statistics (kw_cohort_mean)": _array("kw_cohort_mean", _nan),
    "negative kw_cohort_std": _array("kw_cohort_std", lambda x: -x),
    "statistics of the wrong length": _array("kw_cohort_std", lambda x: x[:-1].copy()),
    "voiceprint infinite": _array("voiceprint", lambda x: np.full_like(x, np.inf)),
    "voiceprint zero": _array("voiceprint", np.zeros_like),
    "voiceprint of another width": _array("voiceprint", lambda x: np.concatenate([x, x])),
    "missing member (average)": lambda d: _rewrite(d, lambda a, m: a.pop("average")),
    "NaN second-front-end template": _array("second_template_0", _nan),
    "second-front-end template of another width": _array("second_template_1", lambda x: x[:, :5].copy()),
    "second-front-end statistics of the wrong length": _array("second_kw_cohort_mean", lambda x: x[:-1].copy()),
    "missing member (second_average)": lambda d: _rewrite(d, lambda a, m: a.pop("second_average")),
    "second-front-end metadata a string": _set("second", "x"),
    "2M-frame template": lambda d: _replace_member(d, "template_0.npy", _npy_header((2_000_000, 19)), 152 << 20),
    "header claiming 373 GiB": lambda d: _replace_member(d, "template_0.npy", _npy_header((2 ** 31, 47)), 0),
    "zip bomb (1.5 GB) under an unknown key": lambda d: _add_member(d, "bomb.npy", _npy_header((1536 << 18,)),
                                                                  1536 << 20),
    "object dtype member": lambda d: _replace_member(d, "average.npy", _npy_header((3,), "|O"), 0),
    "garbage bytes": lambda d: (d / NPZ).write_bytes(b"garbage"),
    "truncated file": lambda d: (d / NPZ).write_bytes((d / NPZ).read_bytes()[:2000]),
    "empty file": lambda d: (d / NPZ).write_bytes(b""),
    "a directory named profile.npz": lambda d: ((d / NPZ).unlink(), (d / NPZ).mkdir()),
    "old two-file layout (profile.json only)": lambda d: ((d / NPZ).unlink(), (d / "profile.json").write_text("{}")),
    "interrupted enrollment (profile.stale.npz only)": lambda d: (d / NPZ).rename(d / "profile.stale.npz"),
}


def _py(*args: str) -> list[str]:
    return [str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").exists() else sys.executable, "-m", "kws", *args]


def cli_cases(tmp: Path, enroll: Path, test: Path, work: Path) -> dict[str, tuple[list[str], Path | None]]:
    """Paths a user can get wrong: name -> (command, prediction file to check or None)."""
    (tmp / "a_file").write_text("x")
    d = tmp / "cli"
    d.mkdir(exist_ok=True)
    (d / "pred_dir").mkdir(exist_ok=True)
    sh = lambda s, *a: ["bash", str(ROOT / s), *map(str, a)]   # noqa: E731
    return {
        "enrollment: WORK_DIR is a file": (sh("enrollment.sh", enroll, tmp / "a_file"), None),
        "enrollment: WORK_DIR under a file": (sh("enrollment.sh", enroll, tmp / "a_file" / "w"), None),
        "enrollment: ENROLL_DIR missing": (sh("enrollment.sh", tmp / "nope", d / "w1"), None),
        "enrollment: ENROLL_DIR is a file": (sh("enrollment.sh", tmp / "a_file", d / "w2"), None),
        "predict: TEST_DIR missing": (sh("predict.sh", tmp / "nope", work, d / "p1.txt"), d / "p1.txt"),
        "predict: TEST_DIR is a file": (sh("predict.sh", tmp / "a_file", work, d / "p2.txt"), d / "p2.txt"),
        "predict: PREDICTION_FILE is a directory": (sh("predict.sh", test, work, d / "pred_dir"), None),
        "predict: PREDICTION_FILE under a file": (sh("predict.sh", test, work, tmp / "a_file" / "p.txt"), None),
        "predict: PREDICTION_FILE named -p.txt": (sh("predict.sh", test, work, "-p.txt"), None),
        "predict: WORK_DIR missing": (sh("predict.sh", test, tmp / "nope", d / "p3.txt"), d / "p3.txt"),
        "predict: KWS_DEADLINE=0": (["env", "KWS_DEADLINE=0", *sh("predict.sh", test, work, d / "p4.txt")], d / "p4.txt"),
        "predict: KWS_DEADLINE=nan": (["env", "KWS_DEADLINE=nan", *sh("predict.sh", test, work, d / "p5.txt")],
                                      d / "p5.txt"),
        "predict: --deadline garbage": (_py("predict", "--deadline", "soon", str(test), str(work), str(d / "p6.txt")),
                                        None),
        "kws enroll: --out is a file": (_py("enroll", "--name", "x", "--out", str(tmp / "a_file"),
                                            *map(str, sorted(enroll.glob("*.wav")))), None),
        "kws detect: profile folder missing": (_py("detect", str(tmp / "nope"), str(next(test.glob("*.wav")))), None),
        "kws detect: audio missing": (_py("detect", str(work), str(tmp / "nope.wav")), None),
    }


def run_case(cmd: list[str], cwd: Path, pred: Path | None, names: set[str]) -> dict:
    from kws.harness.metrics import parse_predictions
    t = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT)})
    errors = [ln.split(" ERROR ", 1)[1].split(": ", 1)[-1] for ln in r.stderr.splitlines() if " ERROR " in ln]
    out = {"exit": r.returncode, "traceback": "Traceback" in r.stderr, "s": round(time.monotonic() - t, 2),
           "message": (errors[0] if errors else r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "")[:150]}
    if pred is not None:
        preds = parse_predictions(pred.read_text()) if pred.is_file() else None
        out["file"] = ("complete, all 0" if preds is not None and set(preds) == names and not any(preds.values())
                       else "empty (no folder to list)" if preds == {} else "BAD")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--speaker", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=Path("bench_output/bad_inputs.md"))
    a = ap.parse_args()
    from kws.safefile import prediction_wavs
    tmp = Path(tempfile.mkdtemp(prefix="kws-bad-"))
    test, enroll = a.speaker.resolve() / "test", a.speaker.resolve() / "enroll"
    names = {p.name for p in prediction_wavs(test)}
    budget = 60.0   # the floor of any folder's predict budget (60 s + 0.25 s per audio second)
    rows = []
    try:
        ref = tmp / "ref"
        subprocess.run(["bash", str(ROOT / "enrollment.sh"), str(enroll), str(ref)], check=True, capture_output=True)
        for name, tamper in TAMPERS.items():
            w = tmp / "w"
            shutil.rmtree(w, ignore_errors=True)
            shutil.copytree(ref, w)
            tamper(w)
            r = run_case(["bash", str(ROOT / "predict.sh"), str(test), str(w), str(tmp / "p.txt")], tmp,
                         tmp / "p.txt", names)
            rows.append(("tampered profile", name, r))
        for name, (cmd, pred) in cli_cases(tmp, enroll, test, ref).items():
            rows.append(("paths and values", name, run_case(cmd, tmp, pred, names)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    lines = ["| group | input | exit | traceback | prediction file | seconds | message |", "|---|---|---|---|---|---|---|"]
    for group, name, r in rows:
        lines.append(f"| {group} | {name} | {r['exit']} | {'YES' if r['traceback'] else 'no'} | {r.get('file', '-')} | "
                     f"{r['s']} | {r['message'].replace('|', '/')} |")
    summary = (f"{len(rows)} cases: {sum(r['traceback'] for _, _, r in rows)} tracebacks, "
               f"{sum(r['exit'] == 0 for g, _, r in rows if g == 'tampered profile')} tampered profiles accepted, "
               f"{sum(r.get('file') == 'BAD' for _, _, r in rows)} bad prediction files, "
               f"{sum(r['s'] > budget for _, _, r in rows)} over the {budget:.0f} s budget floor")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text("\n".join(lines) + f"\n\n{summary}\n")
    print("\n".join(lines) + f"\n\n{summary}")


if __name__ == "__main__":
    main()
