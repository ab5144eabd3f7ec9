#!/usr/bin/env python3
"""Local Auto-KWS platform (same flags as the official starting kit).

    python run_local_test.py --dataset_dir D --solution_dir S --code_dir .
    python run_local_test.py            # no data given: builds and runs a demo task set
"""
import sys

from kws.harness.local_platform import main  # standard library only; kws is beside this file, or installed

if __name__ == "__main__":
    sys.exit(main())
