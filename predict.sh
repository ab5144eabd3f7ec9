#!/usr/bin/env bash
# predict.sh TEST_DIR WORK_DIR PREDICTION_FILE
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py="$here/.venv/bin/python"; [ -x "$py" ] || py=python3
PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" exec "$py" -m kws predict -- "$@"
