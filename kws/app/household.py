"""The people one kws serve process listens for: a profile folder each, loaded once and shared by every
connection, and loaded again when an enrollment changes it.

Profile.enroll builds a phrase's new version in a hidden folder and switches the phrase's link to it
with one rename (api._switch), so a folder's visible entries change only when a version is whole.
refresh() compares those entries (each phrase's link target and its profile file's inode, size and
mtime) with what it last loaded; a changed folder is loaded fully, Detector and all, before the new
Person replaces the old one. A load that fails is logged and the old version stays served.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from kws.app.api import PHRASE_NAME, Detector, Profile
from kws.config import Config
from kws.errors import KwsError
from kws.scoring.calibrate import Calibration
from kws.scoring.profile import LEGACY_NAME, PROFILE_NAME, STALE_NAME

log = logging.getLogger(__name__)

Signature = tuple


@dataclass(frozen=True)
class Person:
    name: str            # the speaker a Detection names
    folder: Path
    detector: Detector   # the profile, calibration and threshold; each stream gets detector.stream(live=True)

    def models(self) -> dict[str, str]:
        """Wake-word model name -> phrase, for each phrase this person enrolled."""
        return {model_name(self.name, phrase): phrase for phrase in self.detector.profile.phrases}


def model_name(person: str, phrase: str) -> str:
    """A model's name in Info, Detect and Detection: unique in the household, as two people may enroll one phrase."""
    return f"{person}:{phrase}"


def parse_profiles(specs: list[str]) -> dict[str, Path]:
    """--profiles [NAME=]DIR ...: the person is NAME, else the folder's name; two people of one name are refused."""
    out: dict[str, Path] = {}
    for spec in specs:
        name, eq, path = spec.partition("=")
        folder = Path(path if eq else spec)
        name = name.strip() if eq else folder.resolve().name
        if not PHRASE_NAME.fullmatch(name):
            raise KwsError(f"--profiles {spec}: person name {name!r}: use letters, digits, space, '.', '_' or '-'")
        if name in out:
            raise KwsError(f"--profiles: two people named {name!r} ({out[name]} and {folder}); "
                           "name them with NAME=DIR")
        if not folder.is_dir():
            raise KwsError(f"--profiles {spec}: {folder} is not a folder")
        out[name] = folder
    if not out:
        raise KwsError("--profiles: give at least one profile folder")
    return out


def signature(folder: Path) -> Signature:
    """What a new enrollment changes in a profile folder. Hidden entries (a version being built, the lock)
    are left out: a half-written version changes nothing here until its link is switched."""
    def stat(p: str) -> tuple[int, int, int] | None:
        try:
            st = os.stat(p)
        except OSError:
            return None
        return st.st_ino, st.st_size, st.st_mtime_ns

    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as e:
        return ("unreadable", type(e).__name__)
    out: list[tuple] = [(n, stat(os.path.join(folder, n))) for n in (PROFILE_NAME, STALE_NAME, LEGACY_NAME)]
    for e in entries:
        if PHRASE_NAME.fullmatch(e.name):
            link = os.readlink(e.path) if e.is_symlink() else ""
            out.append((e.name, link, stat(os.path.join(e.path, PROFILE_NAME))))
    return tuple(out)


class Household:
    """Everyone served; `people` is replaced whole on a change, so a reader's reference stays one consistent view."""

    def __init__(self, folders: dict[str, Path], sensitivity: str | float, cfg: Config):
        self.folders, self.sensitivity, self.cfg = folders, sensitivity, cfg
        self.calibration = Calibration.for_config(cfg)   # one for everyone; the cohort is cached by load_cohort
        self.people: dict[str, Person] = {}
        self._seen: dict[str, Signature] = {}            # each folder as it was at its last load attempt
        self.refresh()

    def models(self) -> dict[str, tuple[Person, str]]:
        """Every model served: name -> (person, phrase)."""
        return {m: (p, phrase) for p in self.people.values() for m, phrase in p.models().items()}

    def refresh(self) -> list[str]:
        """Load the folders that changed since they were last loaded; returns the people whose version changed."""
        people, changed = dict(self.people), []
        for name, folder in self.folders.items():
            before = signature(folder)
            if before == self._seen.get(name):
                continue
            try:
                person = self._load(name, folder)
            except Exception as e:   # whatever the failure, the version being served stays, said in one line
                after = signature(folder)
                # Changed while it loaded (a switch mid-read): try again next time; else wait for a change.
                self._seen[name] = before if after == before else ("retry",)
                kept = "keeping the version loaded before" if name in people else "not serving it yet"
                log.warning("profile %s (%s) not loaded: %s; %s", name, folder, str(e).splitlines()[0][:300], kept)
                continue
            self._seen[name] = before
            people[name] = person
            changed.append(name)
            log.info("serving %s (%s): %s", name, folder, ", ".join(person.detector.profile.phrases))
        if changed:
            self.people = people
        return changed

    def _load(self, name: str, folder: Path) -> Person:
        if not any(PHRASE_NAME.fullmatch(p.name) for p in folder.iterdir()) and \
                not any((folder / n).exists() for n in (PROFILE_NAME, STALE_NAME, LEGACY_NAME)):
            raise KwsError("no phrase enrolled yet")
        profile = Profile.load(folder, self.cfg)
        return Person(name, folder, Detector(profile, self.sensitivity, self.cfg, calibration=self.calibration))
