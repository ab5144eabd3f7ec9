"""``kws report``: an HTML page with PNG plots of an evaluation run, to see why it scored as it did.

Input: the --output_dir of run_local_test.py (report.json; work/<SPK>/ with the profile and
predict_scores.tsv, every score of every test clip), the solution labels, optionally test_meta.tsv
(the kind of each clip) and the test audio (for the alignment plot). Output: index.html with the
PNGs beside it; plain HTML, no scripts, nothing fetched from the network.
"""
from __future__ import annotations

import csv
import html
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kws.config import DEFAULT, SAMPLE_RATE, Config
from kws.errors import KwsError
from kws.app.commands import SCORES_FILE
from kws.harness.local_platform import read_kinds, read_labels

log = logging.getLogger(__name__)

DET_SCORES = (("kw_z", "keyword (kw_z)"), ("spk_seg_z", "speaker (spk_seg_z)"), ("fused", "fused"))


@dataclass(frozen=True)
class Row:
    speaker: str
    file: str
    label: int
    kind: str                 # from test_meta.tsv, else "positive" / "negative"
    scores: dict[str, float]  # every column of predict_scores.tsv, "fused" included; NaN: not scored
    decision: int

    @property
    def fused(self) -> float:
        return self.scores["fused"]


def load_rows(run_dir: str | Path, solution_dir: str | Path, test_meta: str | Path | None = None) -> list[Row]:
    """One Row per test clip of every speaker that has a predict_scores.tsv."""
    run_dir, solution_dir = Path(run_dir), Path(solution_dir)
    tables = sorted((run_dir / "work").glob(f"*/{SCORES_FILE}"))
    if not tables:
        raise KwsError(f"{run_dir}: no work/<SPK>/{SCORES_FILE}; run run_local_test.py --output_dir {run_dir} "
                       "with this version first")
    kinds = read_kinds(test_meta)
    rows = []
    for table in tables:
        spk = table.parent.name
        try:
            labels = read_labels(solution_dir, spk)
        except FileNotFoundError as e:
            raise KwsError(f"{solution_dir}: no labels for {spk} ({e.filename})") from e
        with open(table, encoding="utf-8") as f:
            for r in csv.DictReader(f, delimiter="\t"):
                if r["file"] not in labels:
                    continue
                y = labels[r["file"]]
                scores = {k: float(v) for k, v in r.items() if k not in ("file", "decision")}
                rows.append(Row(spk, r["file"], y, kinds.get((spk, r["file"]), "positive" if y else "negative"),
                                scores, int(r["decision"])))
    return rows


def det_curve(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false-alarm rate, miss rate) at every threshold; a clip that was not scored (NaN) is never accepted."""
    s = np.where(np.isfinite(scores), scores, -np.inf)
    pos, neg = np.sort(s[labels == 1]), np.sort(s[labels == 0])
    t = np.concatenate([[-np.inf], np.unique(s)])
    mr = np.searchsorted(pos, t, side="right") / max(len(pos), 1)
    far = 1 - np.searchsorted(neg, t, side="right") / max(len(neg), 1)
    return far, mr


def equal_error_rate(far: np.ndarray, mr: np.ndarray) -> float:
    """Where the DET curve's false-alarm rate meets its miss rate (the mean of the two at the closest point)."""
    i = int(np.argmin(np.abs(far - mr)))
    return float((far[i] + mr[i]) / 2)


def eer(scores: np.ndarray, labels: np.ndarray) -> float:
    """The equal error rate of scores for binary labels (1: target): the project's one EER."""
    return equal_error_rate(*det_curve(scores, np.asarray(labels).astype(int)))


def rates_at(scores: np.ndarray, labels: np.ndarray, threshold: float) -> tuple[float, float]:
    """(FAR, MR) of the decision score > threshold."""
    accept = np.nan_to_num(scores, nan=-np.inf) > threshold
    return float(accept[labels == 0].mean()), float((~accept[labels == 1]).mean())


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")   # files only, no display
    import matplotlib.pyplot as plt
    return plt


def plot_det(rows: list[Row], threshold: float, path: Path) -> dict[str, float]:
    """DET curves on normal-deviate axes, pooled over speakers; returns each curve's equal error rate."""
    from scipy.special import ndtri
    plt = _pyplot()
    labels = np.array([r.label for r in rows])
    fig, ax = plt.subplots(figsize=(6.5, 6.0), dpi=100)
    dev = lambda p: ndtri(np.clip(p, 5e-4, 1 - 5e-4))  # noqa: E731
    eers = {}
    for name, title in DET_SCORES:
        far, mr = det_curve(np.array([r.scores.get(name, np.nan) for r in rows]), labels)
        eers[name] = equal_error_rate(far, mr)
        ax.plot(dev(far), dev(mr), label=f"{title}: EER {100 * eers[name]:.1f}%", lw=2 if name == "fused" else 1.4)
    far, mr = rates_at(np.array([r.fused for r in rows]), labels, threshold)
    ax.plot(dev(far), dev(mr), "ko", label=f"operating point: FAR {100 * far:.1f}%, MR {100 * mr:.1f}%")
    ticks = np.array([0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8])
    for set_ticks, set_labels in ((ax.set_xticks, ax.set_xticklabels), (ax.set_yticks, ax.set_yticklabels)):
        set_ticks(dev(ticks))
        set_labels([f"{100 * t:g}" for t in ticks])
    ax.set_xlim(dev(0.0005), dev(0.9))
    ax.set_ylim(dev(0.0005), dev(0.9))
    ax.set_xlabel("false-alarm rate (%)")
    ax.set_ylabel("miss rate (%)")
    ax.set_title(f"DET, {len(set(r.speaker for r in rows))} speaker(s) pooled: "
                 f"{int(labels.sum())} positives, {int((labels == 0).sum())} negatives")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return eers


def plot_distributions(rows: list[Row], threshold: float, path: Path) -> None:
    """Histogram of the fused score for each kind of clip, positives first, with the threshold."""
    plt = _pyplot()
    kinds = sorted({r.kind for r in rows}, key=lambda k: (not (k.startswith("pos") or k == "positive"), k))
    fused = np.array([r.fused for r in rows])
    ok = np.isfinite(fused)
    lo, hi = (np.percentile(fused[ok], [0.5, 99.5]) if ok.any() else (threshold - 1, threshold + 1))
    bins = np.linspace(min(lo, threshold - 1), max(hi, threshold + 1), 50)
    fig, axes = plt.subplots(len(kinds), 1, figsize=(8, 1.3 + 1.15 * len(kinds)), dpi=100, sharex=True, squeeze=False)
    for ax, kind in zip(axes[:, 0], kinds):
        f = np.array([r.fused for r in rows if r.kind == kind])
        f = f[np.isfinite(f)]
        positive = all(r.label == 1 for r in rows if r.kind == kind)
        ax.hist(np.clip(f, bins[0], bins[-1]), bins=bins, color="tab:green" if positive else "tab:red", alpha=0.8)
        ax.axvline(threshold, color="k", ls="--", lw=1)
        wrong = int((f <= threshold).sum()) if positive else int((f > threshold).sum())
        ax.set_ylabel(kind, rotation=0, ha="right", va="center", fontsize=9)
        ax.text(0.99, 0.8, f"n={len(f)}, {'missed' if positive else 'false alarms'}: {wrong}",
                transform=ax.transAxes, ha="right", fontsize=9)
        ax.set_yticks([])
    axes[-1, 0].set_xlabel(f"fused score (dashed: threshold {threshold:.2f}; values beyond the axis piled at its ends)")
    fig.suptitle("fused score by kind of clip")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def choose_clip(rows: list[Row], threshold: float) -> Row:
    """The worst false alarm, else the worst miss, else the highest-scoring negative."""
    fa = [r for r in rows if r.label == 0 and r.fused > threshold]
    miss = [r for r in rows if r.label == 1 and not r.fused > threshold]
    if fa:
        return max(fa, key=lambda r: r.fused)
    if miss:
        return min(miss, key=lambda r: np.nan_to_num(r.fused, nan=-np.inf))
    return max((r for r in rows if r.label == 0), key=lambda r: np.nan_to_num(r.fused, nan=-np.inf), default=rows[0])


def plot_alignment(row: Row, run_dir: Path, dataset_dir: Path, path: Path, cfg: Config = DEFAULT) -> str:
    """The clip's speech and its DTW cost against its closest enrollment template, with the best path."""
    from kws.scoring import dtw
    from kws.signal.audio import read_audio
    from kws.scoring.detect import keyword_matches, prepare
    from kws.signal.features import frames_per_second
    from kws.scoring.profile import SpeakerProfile
    plt = _pyplot()
    profile = SpeakerProfile.load(run_dir / "work" / row.speaker)
    clip = prepare(read_audio(dataset_dir / row.speaker / "test" / row.file, cfg.audio), cfg)
    dist, matches = keyword_matches(profile.templates, [clip.frames])
    t = int(np.argmin(dist[:, 0]))
    m, template = matches[t][0], profile.templates[t]
    cost = dtw.cosine_cost(template, clip.frames)
    fps = frames_per_second(cfg.features)
    path_ij = np.array([(i, j + m.start) for i, j in dtw.align(template, clip.frames[m.start:m.end + 1])])
    fig, (wav, mat) = plt.subplots(2, 1, figsize=(9, 6.5), dpi=100, gridspec_kw={"height_ratios": [1, 2.4]})
    wav.plot(np.arange(len(clip.audio)) / SAMPLE_RATE, clip.audio, lw=0.5, color="0.3")
    wav.axvspan(m.start / fps, (m.end + 1) / fps, color="tab:orange", alpha=0.3, label="best match")
    wav.set_xlim(0, len(clip.audio) / SAMPLE_RATE)
    wav.set_title(f"{row.speaker}/{row.file} ({row.kind}, label {row.label}): fused {row.fused:.2f}, "
                  f"decision {row.decision}", fontsize=10)
    wav.legend(loc="upper right", fontsize=8)
    wav.set_yticks([])
    im = mat.imshow(cost, origin="lower", aspect="auto", cmap="viridis_r", interpolation="nearest",
                    extent=(0, cost.shape[1] / fps, 0, cost.shape[0]))
    mat.plot((path_ij[:, 1] + 0.5) / fps, path_ij[:, 0] + 0.5, color="red", lw=1.5, label="DTW path")
    mat.set_xlabel("test clip speech (s)")
    mat.set_ylabel(f"template {t + 1} ({profile.clips[t] if t < len(profile.clips) else ''}) frame")
    mat.legend(loc="upper right", fontsize=8)
    fig.colorbar(im, ax=mat, label="cosine distance", fraction=0.04)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return (f"Closest enrollment template: {t + 1} of {len(profile.templates)}, mean frame distance "
            f"{m.distance:.3f} along the path (worse half {m.worst_half:.3f}); the profile's own takes sit "
            f"{profile.kw_enroll_mean:.3f} from each other, impostor speech {float(profile.kw_cohort_mean[t]):.3f}.")


def _table(head: list[str], body: list[list[object]]) -> str:
    cells = lambda tag, r: "".join(f"<{tag}>{html.escape(str(c))}</{tag}>" for c in r)  # noqa: E731
    return "<table><tr>" + cells("th", head) + "</tr>" + "".join(f"<tr>{cells('td', r)}</tr>" for r in body) + \
        "</table>"


CSS = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f2f2f2}td:first-child,th:first-child{text-align:left}img{max-width:100%;border:1px solid #ddd}
figure{margin:1.5em 0}figcaption{font-size:.92em;color:#444;margin-top:.3em}code{background:#f4f4f4;padding:0 .2em}"""


def write_report(run_dir: str | Path, solution_dir: str | Path, test_meta: str | Path | None = None,
                 dataset_dir: str | Path | None = None, clip: str | None = None, out: str | Path | None = None,
                 cfg: Config = DEFAULT) -> Path:
    """Write OUT/index.html (default RUN_DIR/report) with det.png, scores.png and alignment.png; return its path."""
    from kws.scoring.calibrate import Calibration
    run_dir, solution_dir = Path(run_dir), Path(solution_dir)
    out = Path(out) if out else run_dir / "report"
    dataset_dir = Path(dataset_dir) if dataset_dir else solution_dir.parent / "data"
    rows = load_rows(run_dir, solution_dir, test_meta)
    threshold = Calibration.for_config(cfg).threshold
    out.mkdir(parents=True, exist_ok=True)
    eers = plot_det(rows, threshold, out / "det.png")
    plot_distributions(rows, threshold, out / "scores.png")

    if clip:
        spk, _, name = clip.partition("/")
        chosen = next((r for r in rows if r.speaker == spk and r.file == name), None)
        if chosen is None:
            raise KwsError(f"--clip {clip}: no such clip in {run_dir}/work/*/{SCORES_FILE}; use SPK/FILE.wav")
    else:
        chosen = choose_clip(rows, threshold)
    try:
        align_caption = plot_alignment(chosen, run_dir, dataset_dir, out / "alignment.png", cfg)
    except KwsError as e:   # no audio or profile at hand: the rest of the page still stands
        log.warning("no alignment plot: %s", e)
        (out / "alignment.png").unlink(missing_ok=True)
        align_caption = None

    summary = json.loads((run_dir / "report.json").read_text()) if (run_dir / "report.json").is_file() else {}
    labels = np.array([r.label for r in rows])
    far, mr = rates_at(np.array([r.fused for r in rows]), labels, threshold)
    parts = [f"<h1>Evaluation report: {html.escape(run_dir.name)}</h1>",
             f"<p>{len(rows)} test clips of {len(set(r.speaker for r in rows))} speaker(s) from "
             f"<code>{html.escape(str(run_dir))}</code>. Pooled at the calibrated threshold {threshold:.2f}: "
             f"miss rate {100 * mr:.1f}%, false-alarm rate {100 * far:.2f}%"
             + (f"; platform score {summary['average_score']:.3f} (mean over speakers of MR + 9 &times; FAR)"
                if "average_score" in summary else "") + ".</p>"]
    parts.append('<figure><img src="det.png" alt="DET curves"><figcaption>Detection error trade-off, all speakers '
                 "pooled (normal-deviate axes). " + ", ".join(f"EER {t} {100 * eers[n]:.1f}%" for n, t in DET_SCORES)
                 + ". The dot is the calibrated threshold; one global threshold serves every speaker, so per-speaker "
                 "score shifts show up here as a flatter curve.</figcaption></figure>")
    parts.append('<figure><img src="scores.png" alt="Fused score distributions by kind"><figcaption>The fused score '
                 "of each kind of clip. Green: positives (misses left of the line); red: negatives (false alarms "
                 "right of the line).</figcaption></figure>")
    if align_caption:
        parts.append(f'<h2>Alignment of {html.escape(chosen.speaker + "/" + chosen.file)}</h2><figure>'
                     f'<img src="alignment.png" alt="DTW alignment"><figcaption>{html.escape(align_caption)} '
                     "Yellow is close. A genuine phrase gives a near-diagonal path through a yellow band; a path that "
                     "bends sharply or crosses dark cells matched only part of the phrase.</figcaption></figure>")
    errors = sorted((r for r in rows if (r.fused > threshold) != (r.label == 1)),
                    key=lambda r: -abs(np.nan_to_num(r.fused, nan=0.0) - threshold))
    parts.append(f"<h2>Errors ({len(errors)})</h2>")
    parts.append(_table(["clip", "label", "kind", "fused", "kw_z", "spk_seg_z"],
                        [[f"{r.speaker}/{r.file}", r.label, r.kind, f"{r.fused:.2f}",
                          f"{r.scores.get('kw_z', math.nan):.2f}", f"{r.scores.get('spk_seg_z', math.nan):.2f}"]
                         for r in errors[:40]]))
    if summary.get("speakers"):
        parts.append("<h2>Per speaker (report.json)</h2>")
        parts.append(_table(["speaker", "score", "MR", "FAR", "note"],
                            [[s["speaker"], f"{s['score']:.3f}", f"{s['mr']:.3f}", f"{s['far']:.4f}",
                              s.get("error", "")] for s in summary["speakers"]]))
    page = out / "index.html"
    page.write_text("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>kws report: "
                    f"{html.escape(run_dir.name)}</title><style>{CSS}</style></head><body>\n"
                    + "\n".join(parts) + "\n</body></html>\n", encoding="utf-8")
    log.info("report written to %s", page)
    return page
