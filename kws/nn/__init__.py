"""Numpy runtimes of the neural models (GE2E, the multi-task encoder) and the torch-free checkpoint reader."""
