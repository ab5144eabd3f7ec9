"""Command line: argument parsing only; each command calls one function elsewhere.

    python -m kws enroll ENROLL_DIR WORK_DIR
    python -m kws predict TEST_DIR WORK_DIR PREDICTION_FILE
    python -m kws evaluate --dataset_dir D --solution_dir S [--predictions_dir P] [--test_meta M]
    python -m kws bench [--dataset_dir D] [--output_dir O] [--speakers N]
    python -m kws check
"""
from __future__ import annotations

import argparse
import logging
import sys

log = logging.getLogger("kws")


def _enroll(a: argparse.Namespace) -> int:
    from .pipeline import enroll_folder
    enroll_folder(a.enroll_dir, a.work_dir)
    return 0


def _predict(a: argparse.Namespace) -> int:
    from .pipeline import predict_folder
    predict_folder(a.test_dir, a.work_dir, a.prediction_file, deadline=a.deadline)
    return 0


def _evaluate(a: argparse.Namespace) -> int:
    from .platform import evaluate_folder
    evaluate_folder(a.dataset_dir, a.solution_dir, a.predictions_dir, a.test_meta, a.output_dir)
    return 0


def _bench(a: argparse.Namespace) -> int:
    from pathlib import Path

    from .bench import format_bench, run_bench
    r = run_bench(Path(a.dataset_dir) if a.dataset_dir else None, Path(a.solution_dir) if a.solution_dir else None,
                  Path(a.output_dir), a.speakers)
    print(format_bench(r))
    print(f"wrote {Path(a.output_dir) / 'bench.json'}")
    return 0


def _check(a: argparse.Namespace) -> int:
    from .pipeline import check_pretrained
    check_pretrained()
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m kws", description="Personalised wake-word spotting (Auto-KWS).")
    ap.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("enroll", help="build a speaker profile from enrollment clips")
    p.add_argument("enroll_dir")
    p.add_argument("work_dir")
    p.set_defaults(run=_enroll)
    p = sub.add_parser("predict", help="write <file>\\t<0|1> for every test wav")
    p.add_argument("test_dir")
    p.add_argument("work_dir")
    p.add_argument("prediction_file")
    p.add_argument("--deadline", type=float, default=None,
                   help="epoch seconds by which to be done (default: $KWS_DEADLINE, else the folder's own budget)")
    p.set_defaults(run=_predict)
    p = sub.add_parser("evaluate", help="score a folder of prediction files like the platform")
    p.add_argument("--dataset_dir", required=True)
    p.add_argument("--solution_dir", required=True)
    p.add_argument("--predictions_dir", default="predictions")
    p.add_argument("--test_meta", default=None, help="test_meta.tsv from make_tasks.py: errors by kind")
    p.add_argument("--output_dir", default=None, help="also write scores.txt and report.json here")
    p.set_defaults(run=_evaluate)
    p = sub.add_parser("bench", help="measure speed and memory like the platform; write bench.json")
    p.add_argument("--dataset_dir", default=None, help="task set data/ folder (default: the practice set, else a demo)")
    p.add_argument("--solution_dir", default=None, help="labels, for an accuracy line (default: beside data/)")
    p.add_argument("--output_dir", default="bench_output")
    p.add_argument("--speakers", type=int, default=None, help="only the first N speakers")
    p.set_defaults(run=_bench)
    p = sub.add_parser("check", help="verify that the models and pretrained/ artefacts load")
    p.set_defaults(run=_check)
    return ap


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if a.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    from .errors import KwsError
    try:
        return a.run(a)
    except (KwsError, ValueError, FileNotFoundError) as e:  # ValueError/FileNotFoundError: malformed labels, no dataset
        log.error("%s", e)
        return 2
