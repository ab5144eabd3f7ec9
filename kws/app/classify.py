"""kws classify train | predict | evaluate: the commands around kws.classify (argument checks, files, the report)."""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np

from kws.classify.alc import alc, curve_points, mean_auc, nauc, transform_time
from kws.classify.anytime import predict, train
from kws.classify.dataset import audio_files, prediction_files, read_predictions, read_training, read_truth, write_predictions
from kws.classify.model import ClassifierModel
from kws.config import DEFAULT, Config
from kws.errors import UsageError

log = logging.getLogger(__name__)


def _test_clips(folder: str | Path | None) -> tuple[list[Path], list[str]]:
    if folder is None:
        return [], []
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"{folder}: not a directory")
    paths = audio_files(folder)
    if not paths:
        raise UsageError(f"{folder}: no audio files")
    return paths, [p.relative_to(folder).as_posix() for p in paths]


def classify_train(data: str | None, labels: str | None, budget_s: float, model_dir: str, test: str | None,
                   predictions: str | None, start: float | None, cfg: Config = DEFAULT) -> int:
    if not budget_s > 0 or math.isinf(budget_s):
        raise UsageError(f"--budget {budget_s}: give a positive number of seconds")
    if test is not None and predictions is None:
        predictions = str(Path(model_dir) / "predictions")
    training = read_training(data, labels)
    paths, names = _test_clips(test)
    log.info("%d training clips in %d classes; %d test clips; budget %g s", len(training.paths),
             len(set(training.labels)), len(paths), budget_s)
    curve = train(training, paths, names, model_dir, predictions, budget_s, start, cfg)
    print(json.dumps({"published": [{"elapsed_s": round(t, 3), "cv_nauc": round(s, 4) if s == s else None, "model": m} for t, s, m in curve]}))
    return 0


def classify_predict(model_dir: str, data: str, out: str, cfg: Config = DEFAULT) -> int:
    model = ClassifierModel.load(model_dir)
    paths, names = _test_clips(data)
    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    write_predictions(out_path, names, model.classes, predict(model, paths, cfg), model=model.describe())
    print(f"wrote {out_path}: {len(names)} clips, model {model.describe()}")
    return 0


def evaluate(predictions_dir: str | Path, truth_file: str | Path, budget_s: float, cfg: Config = DEFAULT) -> dict:
    """Each prediction file's NAUC and AUC, the learning curve and its ALC."""
    truth = read_truth(truth_file)
    files = prediction_files(predictions_dir)
    if not files:
        raise UsageError(f"{predictions_dir}: no predictions-NNN.tsv files")
    curve = []
    for f in files:
        p = read_predictions(f)
        index = {n: i for i, n in enumerate(p.names)}
        missing = [n for n in truth if n not in index]
        if missing:
            log.warning("%s: %d clips of the answer key have no line (e.g. %s); they count as uniform", f.name,
                        len(missing), missing[0])
        names = list(truth)
        proba = np.array([p.proba[index[n]] if n in index else np.full(len(p.classes), 1 / len(p.classes))
                          for n in names])
        labels = [truth[n] for n in names]
        curve.append({"file": f.name, "elapsed_s": p.elapsed_s, "model": p.header.get("model", ""),
                      "nauc": round(nauc(proba, p.classes, labels), 4), "auc": round(mean_auc(proba, p.classes, labels), 4),
                      "accuracy": round(float(np.mean([p.classes[int(np.argmax(r))] == t for r, t in zip(proba, labels)])), 4)})
    counted = [c for c in curve if 0 <= c["elapsed_s"] <= budget_s]
    t0 = cfg.classify.alc_t0_s
    return {"budget_s": budget_s, "t0_s": t0, "files": len(curve), "counted": len(counted),
            "alc": round(alc([c["elapsed_s"] for c in counted], [c["nauc"] for c in counted], budget_s, t0), 4),
            "final": counted[-1] if counted else None, "curve": curve}


def plot_curve(result: dict, path: str | Path, title: str = "") -> None:
    """The step learning curve on the log time axis, its area shaded (matplotlib: the [report] extra)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise UsageError("--plot needs matplotlib: pip install 'kws[report]'") from e
    fig, ax = plt.subplots(figsize=(5, 3.2))
    draw_curve(ax, result, title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def draw_curve(ax, result: dict, title: str = "") -> None:
    b, t0 = result["budget_s"], result["t0_s"]
    x, y = curve_points([c["elapsed_s"] for c in result["curve"]], [c["nauc"] for c in result["curve"]], b, t0)
    ax.step(x, y, where="post")
    ax.fill_between(x, y, step="post", alpha=0.25)
    ax.set_xlim(0, 1)
    ax.set_ylim(min(0.0, min(y)), 1)
    ticks = [t for t in (1, 10, 60, 300, 1800) if t <= b]
    ax.set_xticks([float(transform_time(t, b, t0)) for t in ticks], [f"{t}" for t in ticks])
    ax.set_xlabel("seconds (log scale)")
    ax.set_ylabel("NAUC = 2 AUC - 1")
    ax.set_title(f"{title} ALC {result['alc']:.3f}".strip(), fontsize=9)


def classify_evaluate(predictions: str, truth: str, budget_s: float, out: str | None, plot: str | None,
                      cfg: Config = DEFAULT) -> int:
    r = evaluate(predictions, truth, budget_s, cfg)
    if out:
        Path(out).write_text(json.dumps(r, indent=1) + "\n")
    if plot:
        plot_curve(r, plot)
    f = r["final"]
    print(f"ALC {r['alc']:.4f} over {r['counted']} of {r['files']} prediction files (budget {budget_s:g} s); "
          + (f"final: NAUC {f['nauc']:.4f}, AUC {f['auc']:.4f}, accuracy {f['accuracy']:.4f} at {f['elapsed_s']:.1f} s"
             if f else "no prediction within the budget"))
    return 0

