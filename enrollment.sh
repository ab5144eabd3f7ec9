#!/usr/bin/env bash
# enrollment.sh ENROLL_DIR WORK_DIR
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py="$here/.venv/bin/python"; [ -x "$py" ] || py=python3
PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" exec "$py" -m kws enroll -- "$@"
