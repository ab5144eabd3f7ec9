#!/usr/bin/env bash
# enrollment.sh ENROLL_DIR WORK_DIR
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py="$here/.venv/bin/python"; [ -x "$py" ] || py=python3
# PYTHONSAFEPATH: -m would put the working directory first on sys.path, and a kws/ there would run instead.
PYTHONSAFEPATH=1 PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" exec "$py" -m kws enroll -- "$@"
