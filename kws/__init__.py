"""Personalised wake-word spotting for the Auto-KWS 2021 protocol.

Light on purpose: importing ``kws`` loads no model; the submodules do, when used.
``from kws import Profile, Detector`` imports the API (numpy, no torch) only when asked for.
"""
__version__ = "0.1.0"
__all__ = ["Profile", "Detector", "Detection", "ClipScore"]


def __getattr__(name: str):
    # PEP 562: resolve the API names on first use, so `import kws` (the platform does) stays light.
    if name in __all__:
        from kws.app import api
        return getattr(api, name)
    raise AttributeError(f"module 'kws' has no attribute {name!r}")


def limit_blas_threads(n: int = 1, force: bool = False) -> None:
    """Default numpy's BLAS to n threads; only effective before numpy is imported.

    The per-frame LSTM and DTW products are small, so a second thread gains little, and it stalls
    badly whenever the other core is busy (measured 3x slower under load); with one thread each,
    `run_local_test.py --jobs 2` really runs two speakers at once. An explicit setting in the
    environment wins, unless force (a command-line option asked for n).
    """
    import os
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if force:
            os.environ[var] = str(n)
        else:
            os.environ.setdefault(var, str(n))
