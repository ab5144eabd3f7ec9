"""Enrollment: the take validator and quality report, profile building."""
