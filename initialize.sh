#!/usr/bin/env bash
# Once per platform run: set up the runtime environment, then prove every model artefact loads.
# (--dev adds the test tools; --train makes .venv-train with torch; see scripts/setup_venv.sh.)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bash "$here/scripts/setup_venv.sh" "$@" || { echo "initialize.sh: environment set-up failed (see above)" >&2; exit 1; }
venv="$here/.venv"; [ "${1:-}" = --train ] && venv="$here/.venv-train"
cd "$here" && exec "$venv/bin/python" -m kws check
