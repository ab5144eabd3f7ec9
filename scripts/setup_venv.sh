#!/usr/bin/env bash
# Create or reuse a virtual environment of this code folder, outside it, and link it into it.
#   setup_venv.sh          .venv: the runtime, `pip install -e .` (numpy, scipy, soundfile, webrtcvad; no torch)
#   setup_venv.sh --dev    .venv: the runtime plus the test tools (`.[dev]`)
#   setup_venv.sh --train  .venv-train, a second venv: `.[train,dev]` (torch and the rest, several GB)
# A venv is keyed on pyproject.toml, requirements-nodeps.txt, this folder's path (the install is
# editable, so it runs this folder's code) and its kind; KWS_VENV_ROOT moves it (default ~/.cache/kws).
# KWS_VENV=PATH uses that runtime environment as it is, installing nothing.
set -euo pipefail
code_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
extras="" kind=runtime link=.venv
case "${1:-}" in
  "") ;;
  --dev) extras="dev" ;;
  --train) extras="train,dev" kind=train link=.venv-train ;;
  *) echo "setup: unknown option $1 (use --dev or --train)" >&2; exit 2 ;;
esac
if [ -n "${KWS_VENV:-}" ] && [ "$kind" = runtime ]; then
  # A prepared environment, used as it is (e.g. one checkout's, for a copy of its code).
  [ -f "$KWS_VENV/.complete" ] || { echo "setup: KWS_VENV=$KWS_VENV is not a complete kws environment" >&2; exit 1; }
  echo "setup: using $KWS_VENV (KWS_VENV)"
  if [ -w "$code_dir" ]; then ln -sfn "$KWS_VENV" "$code_dir/.venv"; fi
  exit 0
fi
hash=$( (cat "$code_dir/pyproject.toml" "$code_dir/requirements-nodeps.txt"; echo "$code_dir $kind") | sha256sum | cut -c1-12)
venv="${KWS_VENV_ROOT:-$HOME/.cache/kws}/venv-$kind-$hash"
pip_q() {  # grep drops the noise of pip.conf pointing at local mirrors that lack a package, and pip's
  # complaint that resemblyzer's own deps are missing: it is installed without them on purpose (below)
  "$venv/bin/pip" install -q --disable-pip-version-check "$@" \
    2> >(grep -v -e "is ignored" -e "resemblyzer 0.1.4 requires" -e "dependency resolver does not currently" >&2)
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
  ln -sfn "$venv" "$code_dir/$link"
fi
