"""Applications: the platform commands, streaming, the Python API, the kws command, live input."""
