#!/bin/bash
# Train the defaults from scratch, timed (issue 19: "training from scratch <= 60 min on 2 cores").
#
#   scripts/train_all.sh WORK [--listener] [--seed N]
#
# Makes again, from ../shared/data and the training noise only (the noise rule: never ../shared/data/noise),
# every artefact that predict's default reads: the multi-task encoder, the tuned GE2E, the three cohorts of
# the default, three train task sets, their bothplus score tables, and the default's calibrations with their
# keyword fallback tier. With --listener, also the listener's default: its mfcc-ns cohort, the two train
# stream benches, their records, its judge and its veto.
#
# WORK/code is a git worktree of HEAD: the artefacts land in WORK/code/pretrained/, the checkout's pretrained/ is
# never touched (only its build/train-noise is made again, the same bytes); compare, then copy what you keep.
# Options that read the encoder (trunk, matcher, gse, the mfcc-ns predict option, ...) are not made again there,
# so WORK/code runs the defaults only. WORK/timing.tsv: each
# step's wall seconds, and each phase's (predict, listener) for the call that ran it. A rerun skips the steps that
# finished (WORK/done-STEP). --seed N: the encoder's and GE2E's draws (default: the shipped recipe's, 1 and 13); the
# task sets and benches keep theirs. Needs .venv and .venv-train.
set -euo pipefail
usage="usage: train_all.sh WORK [--listener] [--seed N]"
work=$(realpath -m "${1:?$usage}")
shift
listener='' encoder_seed=1 ge2e_seed=13
while [ $# -gt 0 ]; do
  case $1 in
    --listener) listener=1; shift ;;
    --seed) [[ ${2:-} =~ ^[0-9]+$ ]] || { echo "--seed takes a number; $usage" >&2; exit 2; }
            encoder_seed=$2 ge2e_seed=$2; shift 2 ;;
    *) echo "unknown argument $1; $usage" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."
[ -d ../shared/data ] || { echo "train_all.sh trains on ../shared/data, which this machine lacks" >&2; exit 2; }
py=$PWD/.venv/bin/python tpy=$PWD/.venv-train/bin/python
data=$(realpath ../shared/data) noise=$PWD/build/train-noise code=$work/code
mkdir -p "$work"
[ -d "$code" ] || git worktree add --detach "$code" HEAD
export PYTHONPATH=$code     # the worktree's kws, so PRETRAINED_DIR is its pretrained/
cd "$code"
step() {   # step NAME COMMAND...: run once, timed; a rerun skips the steps that finished
  [ -f "$work/done-$1" ] && return 0
  local t0=$SECONDS
  "${@:2}" > "$work/$1.log" 2>&1 || { echo "step $1 failed: $work/$1.log" >&2; return 1; }
  printf '%s\t%d\n' "$1" $((SECONDS - t0)) >> "$work/timing.tsv" && touch "$work/done-$1"
}
both() {   # both FUNCTION1 FUNCTION2: two functions side by side (one core each), both must finish
  local a b; "$1" & a=$!; "$2" & b=$!
  wait $a && wait $b
}
t0=$SECONDS
step train-noise "$py" scripts/build_train_noise.py --words "$data/words" --real "$data/noise-train" --out "$noise"
# the encoder and GE2E's tuning share nothing: one core each
encoder() { step encoder "$tpy" scripts/train_encoder.py --words "$data/words" --noise "$noise" \
    --phrases "$data/phrases" --work "$work/encoder-run" --steps 3000 --threads 1 --jobs 2 --seed "$encoder_seed"; }
voiceprint() { step voiceprint "$tpy" scripts/train_voiceprint.py --words "$data/words" --phrases "$data/phrases" \
    --noise "$noise" --steps 1500 --threads 1 --first-layer 2 --seed "$ge2e_seed"; }
both encoder voiceprint
# the MFCC cohort holds the tuned GE2E's embeddings of its utterances; the other two, the encoder's
cohort() { step cohort "$py" scripts/build_cohort.py --words "$data/words" --noise "$noise"; }
cohort_voiceprints() { step cohort-voiceprints "$py" scripts/build_cohort.py --words "$data/words" --noise "$noise" \
    --voiceprints; }
both cohort cohort_voiceprints
step cohort-encoder "$py" scripts/build_cohort.py --words "$data/words" --noise "$noise" --frontend encoder --int8
for seed in 7 8 9; do
  step tasks-$seed "$py" "$data/../tools/make_tasks.py" --words "$data/words" --split train --noise "$noise" \
      --snr 0 25 --out "$work/kws-train-$seed" --per-speaker 4 --prefix T --seed $seed
done
mkdir -p "$work/tables"
table() { step table-$1 "$py" scripts/score_tasks.py --tasks "$work/kws-train-$2" --speakers-half calibration \
    --voiceprint both --out "$work/tables/bothplus-$1.tsv"; }
tables_1_3() { table 1 7 && table 3 9; }
table_2() { table 2 8; }
both tables_1_3 table_2
# the default and its keyword tier; the keyword and condition columns of a bothplus table are those of the
# encoder table the shipped tier was fitted on (same tasks, same clips)
TABLES_AS=encoder=bothplus ONLY='^calibration(_keyword)?_plus-encoder(_voice-both)?$' PYTHON=$py \
    step fits scripts/fit_calibrations.sh "$work/tables"
printf 'predict\t%d\n' $((SECONDS - t0)) >> "$work/timing.tsv"
[ -n "$listener" ] || exit 0

# the listener's default: the noise-floor front end's cohort, then v30's judge and veto (docs/stream_bench.md:
# v24's columns and recipe, on spans judged whole as the default StreamConfig.span_vad_crop records them)
t1=$SECONDS
step cohort-ns "$py" scripts/build_cohort.py --words "$data/words" --noise "$noise" --frontend mfcc-ns
bench() { step bench-$1 "$py" scripts/stream_bench.py build --words "$data/words" --split train \
    --noise "$data/noise-train" --out "$work/sb-train-$1" --variant dense --minutes 15 "${@:2}"; }
bench dense --per-speaker 1 --seed 101
bench unheard --per-speaker 2 --seed 103 --voices unheard
ns=(--set features.frontend=mfcc-ns --set detect.voiceprint=encoder)   # v24 was fitted with the encoder voiceprint
for b in dense unheard; do
  step enroll-$b "$py" scripts/stream_bench.py enroll --bench "$work/sb-train-$b" --profile profile-ns "${ns[@]}"
  step record-$b "$py" scripts/stream_bench.py run --bench "$work/sb-train-$b" --jobs 2 --profile profile-ns \
      --record rec-ns.tsv --result rec-ns.json "${ns[@]}" --set stream.spot_min_z=-1 --set stream.speaker_veto=
done
# fit_stream's default columns: predict's plain ones and the spotter's score, as v24's and v30's judges
step judge "$py" scripts/fit_stream.py --bench "$work/sb-train-dense" --bench "$work/sb-train-unheard" \
    --record rec-ns.tsv --min-z 0.75 --out pretrained/calibration_stream_mfcc-ns_plus-encoder_voice-encoder_whole.json
step veto "$py" scripts/fit_veto.py --bench "$work/sb-train-dense" --record rec-ns.tsv --profile profile-ns "${ns[@]}"
printf 'listener\t%d\n' $((SECONDS - t1)) >> "$work/timing.tsv"
