#!/usr/bin/env bash
# Create or reuse the virtual environment, outside the clone, keyed on the requirements' hash,
# and link it as .venv in the code folder. Safe to run any number of times.
set -euo pipefail
code_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
hash=$(cat "$code_dir/requirements.txt" "$code_dir/requirements-nodeps.txt" | sha256sum | cut -c1-12)
venv="${KWS_VENV_ROOT:-$HOME/.cache/kws}/venv-$hash"
if [ ! -f "$venv/.complete" ]; then
  echo "setup: creating $venv (torch is large: this can take several minutes)"
  python3 -m venv --clear "$venv"
  # (grep drops the noise of pip.conf pointing at local mirrors that lack a package)
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$code_dir/requirements.txt" 2> >(grep -v "is ignored" >&2)
  "$venv/bin/pip" install -q --disable-pip-version-check --no-deps -r "$code_dir/requirements-nodeps.txt" 2> >(grep -v "is ignored" >&2)
  touch "$venv/.complete"
else
  echo "setup: reusing $venv"
fi
if [ -w "$code_dir" ]; then
  ln -sfn "$venv" "$code_dir/.venv"
fi
