#!/usr/bin/env bash
# Once per platform run: set up the runtime environment, then prove every model artefact loads.
# (./initialize.sh --dev adds the test tools; see scripts/setup_venv.sh.)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bash "$here/scripts/setup_venv.sh" "$@" || { echo "initialize.sh: environment set-up failed (see above)" >&2; exit 1; }
cd "$here" && exec "$here/.venv/bin/python" -m kws check
