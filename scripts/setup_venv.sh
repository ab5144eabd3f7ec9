#!/usr/bin/env bash
# Create or reuse the virtual environment of this code folder, outside it, and link it as .venv.
#   setup_venv.sh          the runtime: `pip install -e .` (numpy, scipy, soundfile, webrtcvad; no torch)
#   setup_venv.sh --dev    the runtime plus the test tools (`.[dev]`)
#   setup_venv.sh --train  the runtime plus the training stack (`.[train,dev]`: torch, several GB)
# The venv is keyed on pyproject.toml, requirements-nodeps.txt and this folder's path (the
# install is editable, so it runs this folder's code); KWS_VENV_ROOT moves it (default ~/.cache/kws).
set -euo pipefail
code_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
extras=""
case "${1:-}" in
  "") ;;
  --dev) extras="dev" ;;
  --train) extras="train,dev" ;;
  *) echo "setup: unknown option $1 (use --dev or --train)" >&2; exit 2 ;;
esac
hash=$( (cat "$code_dir/pyproject.toml" "$code_dir/requirements-nodeps.txt"; echo "$code_dir") | sha256sum | cut -c1-12)
venv="${KWS_VENV_ROOT:-$HOME/.cache/kws}/venv-$hash"
pip_q() {  # (grep drops the noise of pip.conf pointing at local mirrors that lack a package)
  "$venv/bin/pip" install -q --disable-pip-version-check "$@" 2> >(grep -v "is ignored" >&2)
}
if [ ! -f "$venv/.complete" ]; then
  echo "setup: creating $venv (the runtime: numpy, scipy, soundfile, webrtcvad)"
  mkdir -p "$(dirname "$venv")"
  python3 -m venv --clear "$venv"
  pip_q -e "$code_dir"
  # Installed with --no-deps: only the GE2E weights file inside this wheel is read (Apache-2.0);
  # its declared deps (torch, librosa, the old webrtcvad sdist) are not needed.
  pip_q --no-deps -r "$code_dir/requirements-nodeps.txt"
  touch "$venv/.complete"
else
  echo "setup: reusing $venv"
fi
if [ -n "$extras" ] && [ ! -f "$venv/.complete-${extras/,/-}" ]; then
  echo "setup: adding .[$extras] to $venv"
  pip_q -e "$code_dir[$extras]"
  touch "$venv/.complete-${extras/,/-}"
fi
if [ -w "$code_dir" ]; then
  ln -sfn "$venv" "$code_dir/.venv"
fi
