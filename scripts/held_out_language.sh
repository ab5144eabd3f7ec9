#!/bin/bash
# An unseen language, measured (issue 19): train the encoder and fit everything that depends on it without
# one language, then run the platform on dev tasks of that language only.
#
#   scripts/held_out_language.sh LANG WORK [SEEDS] [SECOND] [FRONTEND] [VOICEPRINT]    e.g. scripts/held_out_language.sh ar SCRATCH/held-ar
#
# SECOND: the second keyword front end measured (encoder, the default's; or gse). FRONTEND: the first one (mfcc,
# the default's; or mfcc-ns, the noise-floor option). VOICEPRINT: the speaker check's (both, the default's,
# fitted beside MFCC and the encoder only; or encoder, which the other choices take by default). A second call
# with another choice reuses the held-out encoder, cohorts and train tasks of the first (each step runs once).
#
# WORK/code: a git worktree of HEAD whose pretrained/ gets the held-out encoder, cohorts (no LANG speaker) and
# the calibrations of the choices measured (and the keyword fallback tier), fitted on the calibration half of
# train task set 7 without LANG speakers' tasks (one table per kind, not v5's three: it is a measure of the
# language, not a release). WORK/results-FRONTEND-SECOND-VOICEPRINT/<set>/report.json: dev tasks (make_tasks --lang LANG,
# seeds SEEDS, clean and --snr 0 10). Needs .venv-train (./initialize.sh --train) and ../shared. About 1 h on 2 cores.
set -euo pipefail
lang=${1:?usage: held_out_language.sh LANG WORK [SEEDS]}
work=$(realpath -m "${2:?usage: held_out_language.sh LANG WORK [SEEDS]}")
seeds=${3:-7 8 9}
second=${4:-encoder}
frontend=${5:-mfcc}
voiceprint=${6:-$([ "$frontend-$second" = mfcc-encoder ] && echo both || echo encoder)}   # each one's default
[[ $second == encoder || $second == gse ]] || { echo "SECOND: encoder or gse" >&2; exit 2; }
[[ $frontend == mfcc || $frontend == mfcc-ns ]] || { echo "FRONTEND: mfcc or mfcc-ns" >&2; exit 2; }
[[ $frontend == mfcc || $second == encoder ]] || { echo "FRONTEND mfcc-ns is fitted with SECOND encoder only" >&2; exit 2; }
[[ $voiceprint == encoder || $voiceprint == both ]] || { echo "VOICEPRINT: both or encoder" >&2; exit 2; }
[[ $voiceprint == encoder || $frontend-$second == mfcc-encoder ]] || { echo "VOICEPRINT both is fitted with mfcc and encoder only" >&2; exit 2; }
cd "$(dirname "$0")/.."
repo=$PWD py=$PWD/.venv/bin/python words=../shared/data/words noise=build/train-noise
code=$work/code
[ -d "$code" ] || git worktree add --detach "$code" HEAD
[ -d "$noise" ] || "$py" scripts/build_train_noise.py --out "$noise"
export PYTHONPATH=$code     # the worktree's kws, so PRETRAINED_DIR is its pretrained/
step() {   # step NAME COMMAND...: run once; a rerun of this script skips the steps that finished
  [ -f "$work/done-$1" ] || { "${@:2}" && touch "$work/done-$1"; }
}
step encoder "$repo/.venv-train/bin/python" scripts/train_encoder.py --words "$words" --noise "$noise" \
    --phrases ../shared/data/phrases --work "$work/encoder-run" --steps 3000 --threads 2 --jobs 2 --hold-out "$lang"
step cohort "$py" scripts/build_cohort.py --noise "$noise" --hold-out "$lang"
[ "$frontend" = mfcc ] || step cohort-$frontend "$py" scripts/build_cohort.py --noise "$noise" --hold-out "$lang" \
    --frontend "$frontend"
step cohort-voiceprints "$py" scripts/build_cohort.py --noise "$noise" --hold-out "$lang" --voiceprints
step cohort-$second "$py" scripts/build_cohort.py --noise "$noise" --hold-out "$lang" --frontend "$second" \
    $([ "$second" = encoder ] && echo --int8)   # as shipped (pretrained/README.md)
# the both voiceprints' GE2E is tuned here too (pretrained/ge2e_tuned.npz): tuned again without LANG, and the
# cohort's GE2E embeddings made again in it (same seed, same utterances)
if [ "$voiceprint" = both ]; then
  step voiceprint "$repo/.venv-train/bin/python" scripts/train_voiceprint.py --words "$words" --phrases ../shared/data/phrases \
      --noise "$noise" --steps 1500 --threads 1 --first-layer 2 --hold-out "$lang"
  step cohort-ge2e "$py" scripts/build_cohort.py --noise "$noise" --hold-out "$lang"
fi
# train tasks of speakers who do not speak LANG (tasks.tsv's lang column is the phrase's, keyed by word name)
tasks=$work/train-7 kept=$work/train-7-without-$lang
[ -d "$tasks" ] || "$py" ../shared/tools/make_tasks.py --words "$words" --split train --noise "$noise" --snr 0 25 \
    --out "$tasks" --per-speaker 4 --prefix T --seed 7
rm -rf "$kept" && mkdir -p "$kept/data" "$kept/solution"
awk -F'\t' -v l="$lang" 'NR==FNR { if ($6 == l) drop[$4] = 1; next } FNR == 1 || !($2 in drop)' \
    "$words/manifest.tsv" "$tasks/tasks.tsv" > "$kept/tasks.tsv"
for t in $(awk -F'\t' 'NR > 1 { print $1 }' "$kept/tasks.tsv"); do
  ln -s "$tasks/data/$t" "$kept/data/$t"
  ln -s "$tasks/solution/${t}_test_labels.txt" "$kept/solution/"
done
mkdir -p "$work/tables"
# fit_calibrations.sh's name for the table kind, and the calibrations' infix for the front ends
case $frontend-$second in
  mfcc-encoder) table=encoder infix=plus-encoder ;;
  mfcc-gse) table=gseplus infix=plus-gse ;;
  mfcc-ns-encoder) table=ns infix=mfcc-ns_plus-encoder ;;
esac
step table-$frontend-$second "$py" scripts/score_tasks.py --tasks "$kept" --speakers-half calibration --voiceprint encoder \
    --frontend "$frontend" --second-frontend "$second" --out "$work/tables/$table-1.tsv"
# the keyword tier's fit comes from the table above; the both voiceprints' from a table of its own
[ "$voiceprint" = encoder ] || step table-bothplus "$py" scripts/score_tasks.py --tasks "$kept" --speakers-half calibration \
    --voiceprint both --out "$work/tables/bothplus-1.tsv"
ONLY="^calibration(_keyword)?_$infix(_voice-$voiceprint)?\$" PYTHON=$py "$code/scripts/fit_calibrations.sh" "$work/tables"
export KWS_VENV=$(readlink -f .venv)
for seed in $seeds; do
  for snr in "5 25" "0 10"; do
    set_dir=$work/dev-$lang-$seed-snr${snr/ /-}
    [ -d "$set_dir" ] || "$py" ../shared/tools/make_tasks.py --words "$words" --split dev --noise ../shared/data/noise \
        --lang "$lang" --seed "$seed" --snr $snr --out "$set_dir"
    "$py" run_local_test.py --code_dir "$code" --dataset_dir "$set_dir/data" --solution_dir "$set_dir/solution" \
        --test_meta "$set_dir/test_meta.tsv" --output_dir "$work/results-$frontend-$second-$voiceprint/$(basename "$set_dir")" --jobs 1 \
        --set detect.second_frontend="$second" --set features.frontend="$frontend" --set detect.voiceprint="$voiceprint" \
        --set stream.speaker_veto=    # the listener's veto is fitted with the shipped GE2E, and predict never uses it
  done
done
