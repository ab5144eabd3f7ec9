"""Personalised wake-word spotting for the Auto-KWS 2021 protocol.

Light on purpose: importing ``kws`` loads no model; the submodules do, when used.
``from kws import Profile, Detector`` imports the API (and torch) only when asked for.
"""
__version__ = "0.1.0"
__all__ = ["Profile", "Detector", "Detection", "ClipScore"]


def __getattr__(name: str):
    # PEP 562: resolve the API names on first use, so `import kws` (the platform does) stays light.
    if name in __all__:
        from . import api
        return getattr(api, name)
    raise AttributeError(f"module 'kws' has no attribute {name!r}")
