"""Errors a user can cause; each message names the file and says what to do. The CLI logs them and exits 2."""


class KwsError(Exception):
    """Base of every user-facing error."""


class AudioError(KwsError, ValueError):
    """A file that cannot be used as audio."""


class WeightsError(KwsError, RuntimeError):
    """A model or pretrained artefact is missing or unusable."""


class ProfileError(KwsError, RuntimeError):
    """A speaker profile that is missing, damaged or from an incompatible version."""


class EnrollmentError(KwsError, RuntimeError):
    """No usable enrollment clip."""


class UsageError(KwsError, ValueError):
    """An argument or environment value that cannot be used (e.g. a deadline that is no epoch time)."""
