"""The Python API: a person's Profile of wake phrases, and a Detector over it.

    from kws import Profile, Detector
    profile, quality = Profile.enroll("me/", "hey-kws", ["t1.wav", "t2.wav", "t3.wav", "t4.wav", "t5.wav"])
    for d in Detector("me/", sensitivity="balanced").detect("meeting.flac"):
        print(d.phrase, d.start_s, d.fused)

``kws enroll --name`` and ``kws detect`` are thin layers over these objects, and they stand on the
platform's pieces: every phrase is a SpeakerProfile (profile.py) built by enroll.build_profile,
scored by detect.score_clips and decided by the same Calibration as predict.sh.

On disk a Profile is a folder with one sub-folder per phrase: PROFILE_DIR/<phrase>/ holds the
SpeakerProfile (profile.npz) and clips/ (the phrase is a link to a version folder, switched by one rename), copies of the takes, so that takes can be
added later and the phrase rebuilt. A platform WORK_DIR also loads, as one phrase.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

import numpy as np

from kws.scoring.calibrate import Calibration
from kws.scoring.cohort import load_cohort
from kws.config import DEFAULT, Config
from kws.scoring.detect import check_compatible, first_profile
from kws.enrollment.enroll import build_profile
from kws.errors import EnrollmentError, ProfileError
from kws.scoring.profile import LEGACY_NAME, PROFILE_NAME, STALE_NAME, SpeakerProfile, enrollment_lock
from kws.enrollment.quality import EnrollmentQuality, assess_files, format_report, unusable
from kws.app.stream import Detection, StreamDetector, detect_blocks, read_blocks, threshold_offset

log = logging.getLogger(__name__)

__all__ = ["Profile", "Detector", "Detection", "ClipScore"]

CLIPS_DIR = "clips"
PHRASE_NAME = re.compile(r"\w[\w .-]{0,63}")   # a folder name: no slashes, no leading dot


@dataclass
class Profile:
    folder: Path
    phrases: dict[str, SpeakerProfile]

    @classmethod
    def load(cls, folder: str | Path, cfg: Config = DEFAULT) -> "Profile":
        folder = Path(folder)
        if any((folder / n).is_file() for n in (PROFILE_NAME, STALE_NAME, LEGACY_NAME)):
            # a platform WORK_DIR: one phrase, named after the folder
            return cls(folder, {folder.name: SpeakerProfile.load(folder, cfg)})
        found = sorted(p for p in folder.iterdir() if PHRASE_NAME.fullmatch(p.name)
                       and (p / PROFILE_NAME).is_file()) if folder.is_dir() else []
        if not found:
            raise ProfileError(f"{folder}: no enrolled phrase; create one with "
                               f"kws enroll --name PHRASE --out {folder} take1.wav ... take5.wav")
        return cls(folder, {p.name: SpeakerProfile.load(p, cfg) for p in found})

    @classmethod
    def enroll(cls, folder: str | Path, phrase: str, takes: list[str | Path], add: bool = False,
               replace: bool = False, cfg: Config = DEFAULT, force: bool = False
               ) -> tuple["Profile", EnrollmentQuality]:
        """Check the takes, build the phrase and save it with copies of the takes it used.

        add: rebuild an enrolled phrase from its saved takes plus these; replace: start it over.
        A phrase whose every take is unusable (quality.unusable) is refused unless force.
        The phrase is a link to a version folder (profile + clips/): a new version is built beside it
        and switched in with one rename, so a kill at any moment leaves the old phrase or the new one,
        whole, and nothing changes when enrollment fails. Enrollments into one folder take turns.
        """
        if not PHRASE_NAME.fullmatch(phrase):
            raise EnrollmentError(f"phrase name {phrase!r}: use letters, digits, space, '.', '_' or '-' "
                                  "(it becomes a folder name)")
        if add and replace:
            raise EnrollmentError("--add keeps the enrolled takes and --replace drops them: choose one")
        folder = Path(folder)
        target = folder / phrase
        with enrollment_lock(folder):
            _clean_staging(folder)
            enrolled = (target / PROFILE_NAME).is_file()
            if enrolled and not (add or replace):
                raise EnrollmentError(f"{target}: '{phrase}' is already enrolled; --add adds these takes to it, "
                                      "--replace starts it over")
            if add and not enrolled:
                raise EnrollmentError(f"{target}: no enrolled phrase '{phrase}' to add to; enroll it without --add")
            staging = Path(tempfile.mkdtemp(prefix=f".{phrase}.v-", dir=folder))
            try:
                clips = staging / CLIPS_DIR
                clips.mkdir()
                old = [Path(shutil.copy2(p, clips / p.name)) for p in sorted((target / CLIPS_DIR).iterdir())] \
                    if add and (target / CLIPS_DIR).is_dir() else []
                incoming = staging / ".incoming"
                incoming.mkdir()
                new = _stage(takes, incoming, taken={p.name for p in old})
                quality = assess_files(old + new, cfg)
                try:
                    profile = build_profile(old + new, cfg)
                except EnrollmentError as e:
                    raise EnrollmentError(f"{e}\n{format_report(quality)}") from e
                if unusable(quality) and not force:
                    raise EnrollmentError(f"every take of '{phrase}' is unusable; record them again (--force "
                                          f"saves the phrase anyway)\n{format_report(quality)}")
                for p in new:   # keep the takes the profile was built from, for a later --add
                    if p.parent == incoming and p.name in profile.clips:
                        os.replace(p, clips / p.name)
                shutil.rmtree(incoming)
                profile.save(staging)
                _switch(target, staging)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            _clean_staging(folder)
        log.info("enrolled '%s' in %s from %d take(s)", phrase, target, len(profile.clips))
        return cls.load(folder, cfg), quality


def _switch(target: Path, version: Path) -> None:
    """Point target at version with one rename of a link (a folder of the old layout is moved aside first)."""
    if target.is_dir() and not target.is_symlink():
        os.replace(target, target.parent / f".{target.name}.v-old")
    link = target.parent / f".{target.name}.link-{os.getpid()}"
    link.unlink(missing_ok=True)
    os.symlink(version.name, link)
    os.replace(link, target)


def _clean_staging(folder: Path) -> None:
    """Version folders no phrase points at, and links never switched in: what a killed enrollment left."""
    live = {os.readlink(p) for p in folder.iterdir() if p.is_symlink() and PHRASE_NAME.fullmatch(p.name)}
    for p in folder.iterdir():
        if p.name.startswith(".") and ".v-" in p.name and p.name not in live and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        elif p.name.startswith(".") and ".link-" in p.name and p.is_symlink():
            p.unlink(missing_ok=True)
        elif p.name.startswith(".enroll-") and p.is_dir():   # staging of the older layout
            shutil.rmtree(p, ignore_errors=True)


def _stage(takes: list[str | Path], staging: Path, taken: set[str]) -> list[Path]:
    """Copy the takes into staging under names unused so far; paths that are not files stay as they are
    (the quality report and enrollment then say what is wrong with them)."""
    out = []
    for t in map(Path, takes):
        if not t.is_file():
            out.append(t)
            continue
        name, n = t.name, 1
        while name in taken:
            name, n = f"{t.stem}-{n}{t.suffix}", n + 1
        taken.add(name)
        out.append(Path(shutil.copy2(t, staging / name)))
    return out


@dataclass(frozen=True)
class ClipScore:
    file: str
    phrase: str        # the best-scoring phrase
    fused: float       # its calibrated score; NaN when the clip could not be scored
    detected: bool


class Detector:
    """A Profile, the calibration and a sensitivity: detections in recordings of any length, or scores of clips."""

    def __init__(self, profile: Profile | str | Path, sensitivity: str | float = "balanced",
                 cfg: Config = DEFAULT, calibration: Calibration | None = None,
                 stream_calibration: Calibration | None = None):
        self.profile = profile if isinstance(profile, Profile) else Profile.load(profile, cfg)
        cohort = load_cohort(cfg=cfg.features, voiceprint=cfg.detect.voiceprint)
        # Clips are scored in cfg's front end and voiceprint: a phrase enrolled in others is made again from
        # its stored takes (an upgrade's new default need not mean enrolling again); other weights are refused.
        self.phrases = {name: first_profile(phrase, cfg) for name, phrase in self.profile.phrases.items()}
        for name, phrase in self.phrases.items():
            check_compatible(phrase, cfg, self.profile.folder / name, cohort)
        self.calibration = calibration or Calibration.for_config(cfg)          # whole clips (score)
        self.stream_calibration = stream_calibration or Calibration.for_stream(cfg)   # stream candidates (detect, listen)
        self.offset = threshold_offset(sensitivity, cfg.stream)
        self.threshold = self.calibration.threshold + self.offset
        self.cfg = cfg

    def stream(self, live: bool = False) -> StreamDetector:
        """A fresh streaming state, for audio that arrives in blocks (16 kHz mono float32): feed(), then flush().

        live: judge each candidate in the hop that finds it (StreamConfig.max_delay_s = 0), for real-time
        input; the decisions are the same as batched ones, only sooner."""
        cfg = replace(self.cfg, stream=replace(self.cfg.stream, max_delay_s=0.0)) if live else self.cfg
        return StreamDetector(self.profile.phrases, self.stream_calibration, self.offset, cfg)

    def listen(self, device: int | str | None = None, seconds: float | None = None) -> Iterator[Detection]:
        """Detections from the input device as they happen (the [mic] extra: sounddevice)."""
        from kws.app.mic import microphone_blocks
        return detect_blocks(self.stream(live=True), microphone_blocks(self.cfg.stream.live_block_s, device, seconds))

    def detect(self, path: str | Path) -> Iterator[Detection]:
        """Detections in a file of any length and format, as the file is read block by block."""
        return detect_blocks(self.stream(), read_blocks(path, self.cfg.stream.block_s))

    def score(self, paths: list[str | Path]) -> list[ClipScore]:
        """Whole clips scored as predict.sh scores them, each on its own: with the default sensitivity, the
        same decisions as predict.sh on a folder it does not test-set normalise (DetectConfig.set_norm)."""
        from kws.app.commands import score_files   # the platform's batching and unreadable-file handling
        paths = [Path(p) for p in paths]
        names = list(self.phrases)
        fused = np.array([self.calibration.fuse(score_files(p, paths, self.cfg)) for p in self.phrases.values()])
        best = np.argmax(np.nan_to_num(fused, nan=-np.inf), axis=0)
        return [ClipScore(p.name, names[b], float(fused[b, i]), bool(fused[b, i] > self.threshold))
                for i, (p, b) in enumerate(zip(paths, best))]
