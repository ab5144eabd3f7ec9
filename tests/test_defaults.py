"""One source of defaults: a switch's default (front end, voiceprint, matcher, noise matching, test-set
normalisation) is spelled in kws/config.py and nowhere else; helpers take it from the config."""
from __future__ import annotations

import ast
from dataclasses import fields
from pathlib import Path

import pytest

from kws import config

ROOT = Path(__file__).resolve().parent.parent
CHOICES = set(config.FRONTENDS) | set(config.VOICEPRINTS)
# Config fields that switch behaviour, and the parameter names that stand for them.
SWITCHES = {f.name for sub in (config.DetectConfig, config.FeatureConfig) for f in fields(sub)
            if f.type in ("bool", bool) or f.name in ("frontend", "voiceprint")}
ALIASES = SWITCHES | {"kind", "voiceprint_kind"}


def sources() -> list[Path]:
    files = sorted((ROOT / "kws").rglob("*.py")) + sorted((ROOT / "scripts").rglob("*.py"))
    return [p for p in files if p.name != "config.py" or p.parent.name != "kws"]


def spelled_defaults(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, what) for every literal default of a switch: parameters, dataclass fields, argparse defaults."""
    out = []

    def literal(node: ast.AST | None) -> bool:
        return isinstance(node, ast.Constant) and (node.value in CHOICES or isinstance(node.value, bool))

    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = node.args
            pos = a.posonlyargs + a.args
            pairs = list(zip(pos[len(pos) - len(a.defaults):], a.defaults)) + list(zip(a.kwonlyargs, a.kw_defaults))
            out += [(d.lineno, f"{node.name}({p.arg}={d.value!r})") for p, d in pairs
                    if p.arg in ALIASES and literal(d)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if node.target.id in ALIASES and literal(node.value):
                out.append((node.lineno, f"{node.target.id} = {node.value.value!r}"))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument" and node.args:
            flag = getattr(node.args[0], "value", "")
            for k in node.keywords:
                if k.arg == "default" and isinstance(flag, str) and flag.lstrip("-").replace("-", "_") in ALIASES \
                        and literal(k.value):
                    out.append((node.lineno, f"{flag} default={k.value.value!r}"))
    return out


def test_switches_are_found():
    assert {"frontend", "voiceprint", "matcher", "noise_match", "set_norm"} <= SWITCHES


def test_no_switch_default_outside_config():
    found = [f"{p.relative_to(ROOT)}:{line}: {what}" for p in sources()
             for line, what in spelled_defaults(ast.parse(p.read_text(encoding="utf-8")))]
    assert not found, "switch defaults spelled outside kws/config.py:\n" + "\n".join(found)


@pytest.mark.parametrize("code, hits", [
    ("def f(voiceprint='ge2e'): pass", 1),
    ("def f(*, kind: str = 'encoder'): pass", 1),
    ("def f(matcher=False): pass", 1),
    ("ap.add_argument('--frontend', default='mfcc')", 1),
    ("class P:\n    voiceprint_kind: str = 'encoder'", 1),
    ("def f(voiceprint=DEFAULT.detect.voiceprint): pass", 0),
    ("ap.add_argument('--voiceprint', default=DEFAULT.detect.voiceprint)", 0),
])
def test_the_check_can_fail(code, hits):
    assert len(spelled_defaults(ast.parse(code))) == hits
