"""The people one kws serve process listens for: a profile folder each, loaded once and shared by every
connection, and loaded again when an enrollment changes it.

Profile.enroll builds a phrase's new version in a hidden folder and switches the phrase's link to it
with one rename (api._switch), so a folder's visible entries change only when a version is whole.
refresh() compares those entries (each phrase's link target and its profile file's inode, size and
mtime) with what it last loaded; a changed phrase is loaded and checked, and the person's new Detector
built, before the new Person replaces the old one. A phrase that fails to load is logged and its old
version stays served.
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
from kws.scoring.profile import LEGACY_NAME, PROFILE_NAME, STALE_NAME, SpeakerProfile

log = logging.getLogger(__name__)

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


Entry = tuple   # what one phrase looked like on disk: (link target, profile file's inode, size, mtime)


def _stat(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def entries(folder: Path) -> dict[str, Entry]:
    """Each phrase of a profile folder as it is on disk now: a platform WORK_DIR (profile.npz in the folder
    itself) is one phrase named after the folder. Hidden entries (a version being built, the lock) are
    left out, so a version being written changes nothing here until its link is switched."""
    if any(_stat(os.path.join(folder, n)) for n in (PROFILE_NAME, STALE_NAME, LEGACY_NAME)):
        return {folder.name: ("", *(_stat(os.path.join(folder, n)) for n in (PROFILE_NAME, STALE_NAME, LEGACY_NAME)))}
    try:
        found = list(os.scandir(folder))
    except OSError:
        return {}
    out = {}
    for e in found:
        if PHRASE_NAME.fullmatch(e.name):
            target = os.readlink(e.path) if e.is_symlink() else ""
            if (st := _stat(os.path.join(e.path, PROFILE_NAME))) is not None:   # no profile file: not enrolled yet
                out[e.name] = (target, st)
    return out


class Household:
    """Everyone served; `people` is replaced whole on a change, so a reader's reference stays one consistent view.

    Phrases load one by one: a phrase that fails to load keeps its last good version (or stays unserved),
    and does not hold back the person's other phrases."""

    def __init__(self, folders: dict[str, Path], sensitivity: str | float, cfg: Config):
        self.folders, self.sensitivity, self.cfg = folders, sensitivity, cfg
        self.calibration = Calibration.for_stream(cfg)   # one for everyone; the cohort is cached by load_cohort
        self.people: dict[str, Person] = {}
        self._loaded: dict[str, dict[str, tuple[Entry, SpeakerProfile]]] = {n: {} for n in folders}
        self._failed: dict[tuple[str, str], Entry] = {}  # (person, phrase) -> the entry that failed to load
        self.refresh()
        for name in folders.keys() - self.people.keys():
            log.warning("%s (%s): no phrase to serve yet; one enrolled there is served as it comes", name, folders[name])

    def models(self) -> dict[str, tuple[Person, str]]:
        """Every model served: name -> (person, phrase)."""
        return {m: (p, phrase) for p in self.people.values() for m, phrase in p.models().items()}

    def refresh(self) -> list[str]:
        """Load what changed on disk since the last look; returns the people whose served phrases changed."""
        people, changed = dict(self.people), []
        for name, folder in self.folders.items():
            if (person := self._refresh(name, folder)) is not False:
                changed.append(name)
                if person is None:
                    people.pop(name, None)
                else:
                    people[name] = person
        if changed:
            self.people = people
        return changed

    def _refresh(self, name: str, folder: Path) -> "Person | None | bool":
        """The person's new version; None when nothing of theirs is served any more; False when unchanged."""
        now, loaded = entries(folder), self._loaded[name]
        phrases = {k: v for k, v in loaded.items() if k in now}   # a phrase whose folder went is not served
        for phrase, entry in now.items():
            if loaded.get(phrase, (None,))[0] == entry or self._failed.get((name, phrase)) == entry:
                continue
            try:
                profile = self._load_phrase(folder, phrase)
            except Exception as e:   # whatever the failure, the version being served stays, said in one line
                # An entry that changed while it loaded (a switch mid-read) is tried again at the next look.
                if entries(folder).get(phrase) == entry:
                    self._failed[name, phrase] = entry
                kept = "keeping the version loaded before" if phrase in phrases else "not serving it"
                log.warning("%s: phrase %s of %s not loaded: %s; %s", folder, phrase, name,
                            str(e).splitlines()[0][:300], kept)
                continue
            self._failed.pop((name, phrase), None)
            phrases[phrase] = (entry, profile)
        if phrases.keys() == loaded.keys() and all(phrases[k][0] == loaded[k][0] for k in phrases):
            return False
        self._loaded[name] = phrases
        if not phrases:
            log.info("%s (%s): no phrase served", name, folder)
            return None
        profile = Profile(folder, {k: v[1] for k, v in sorted(phrases.items())})
        person = Person(name, folder, Detector(profile, self.sensitivity, self.cfg, stream_calibration=self.calibration))
        log.info("serving %s (%s): %s", name, folder, ", ".join(profile.phrases))
        return person

    def _load_phrase(self, folder: Path, phrase: str) -> SpeakerProfile:
        """One phrase, loaded and checked against the models as Detector checks it."""
        where = folder if phrase == folder.name and (folder / PROFILE_NAME).is_file() else folder / phrase
        one = Profile(folder, {phrase: SpeakerProfile.load(where, self.cfg)})
        Detector(one, self.sensitivity, self.cfg, stream_calibration=self.calibration)   # raises ProfileError if it cannot serve
        return one.phrases[phrase]
