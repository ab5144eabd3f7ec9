"""The local platform harness: scoring runs, metrics, reports, benchmarks, demo task sets."""
