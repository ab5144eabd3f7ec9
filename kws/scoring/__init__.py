"""Scoring: DTW, templates, cohort, voiceprints, the score registry, detection and calibration (apply)."""
