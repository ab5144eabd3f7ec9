#!/bin/bash
# Refit every calibration in pretrained/ from train-split score tables.
#
#   scripts/fit_calibrations.sh DIR            (ONLY=REGEX: just the calibrations whose names match)
#
# DIR holds, for each train task set k (k = 1 2 3: make_tasks.py --split train, seeds 7 8 9;
# pretrained/README.md), tables from scripts/score_tasks.py --speakers-half calibration; each fit
# uses every table of its kind there (the provenance of each calibration lists them):
#   ge2e-k.tsv      --matcher                          (GE2E voiceprint; kw_cnn for the matcher fits)
#   encoder-k.tsv   --matcher --voiceprint encoder --noise-match  (the default voiceprint; kw_nm_* for the _nm
#                   fits, and the default second front end's encoder_kw_* for the _plus-encoder fits)
#   both-k.tsv      --voiceprint both --second-frontend ''
#   bothplus-k.tsv  --voiceprint both                  (both voiceprints beside the default second front end)
#   gseplus-k.tsv   --voiceprint encoder --second-frontend gse   (Google's speech_embedding as the second front end)
#   gseboth-k.tsv   --voiceprint both --second-frontend gse
#   ewnboth-k.tsv   --voiceprint both --word-embedding   (EfficientWord-Net's ewn_* beside the default: the _ewn fits)
#   trunk-k.tsv     --voiceprint trunk                 (the trunk block's voiceprint beside the default second front end)
#   frames-k.tsv    --frontend encoder                 (the encoder keyword front end, GE2E voiceprint)
#   frames-encoder-k.tsv  --frontend encoder --voiceprint encoder
#   ns-k.tsv        --frontend mfcc-ns --voiceprint encoder   (the noise-floor MFCC option: the _mfcc-ns_ fits)
# Only train-split tables: fit_calibration.py refuses dev (D...) and practice (P...) tasks.
# TABLES_AS=KIND=OTHER: the fits of table kind KIND read OTHER's tables instead (scripts/train_all.sh: encoder=bothplus
# for the default's keyword tier; a bothplus table's keyword and condition columns equal the encoder table's).
set -euo pipefail
TABLES_AS=${TABLES_AS:-}
dir=${1:?usage: scripts/fit_calibrations.sh DIR}
cd "$(dirname "$0")/.."
py=${PYTHON:-.venv/bin/python}
# keyword scores, the noise-matched templates' (the _nm fits), then the clip's conditions, which every
# fit takes: a noisy clip is judged in its conditions (docs/results.md, v4).
# The column lists come from the registry (kws/scoring/scores.py; `python -m kws.scoring.scores` prints each formula).
columns() { "$py" -m kws.scoring.scores --columns "$@"; }
kw=$(columns keyword)
nm=$(columns keyword --switch noise_match)
cnn=$(columns matcher)
spk=$(columns speaker)
cond=$(columns condition)
condset=$(columns condition --per-set)   # every _set fit also takes them standardised over the folder (v6)
# the second keyword front end's columns (DetectConfig.second_frontend=encoder): the _plus-encoder fits
enc2=$(columns second --switch second_frontend | tr , '\n' | grep '^encoder_' | paste -sd, -)
gse2=$(columns second --switch second_frontend | tr , '\n' | grep '^gse_' | paste -sd, -)
ewn=ewn_cos   # the word embedding's column (ewn_gap beside it: no better on CV; docs/results.md, v25)
# The _set fits standardise over the folder the keyword, speaker and condition columns alike: CV on the
# train tables 0.299 with keyword columns alone, 0.282 with all three (docs/results.md, v6).
fit() {   # fit OUT TABLE COLUMNS [SET_COLUMNS]: the plain fit, and the test-set normalised one when asked
  local out=$1 table=$2 cols=$3 set=${4:-}
  if [ -n "${ONLY:-}" ] && ! [[ $out =~ $ONLY ]]; then return 0; fi   # ONLY=REGEX: refit just those
  if [ "$table" = "${TABLES_AS%%=*}" ]; then table=${TABLES_AS#*=}; fi
  "$py" scripts/fit_calibration.py --scores "$dir/$table"-[0-9].tsv --columns "$cols,$cond" --out "pretrained/$out.json"
  if [ -n "$set" ]; then
    "$py" scripts/fit_calibration.py --scores "$dir/$table"-[0-9].tsv --columns "$cols,$cond" --set-columns "$set,$condset" \
        --out "pretrained/${out}_set.json"
  fi
}
fit calibration_keyword_plus-encoder                 encoder "$kw,$enc2"            "$kw,$enc2"
fit calibration_plus-encoder_voice-encoder           encoder "$kw,$enc2,$spk"       "$kw,$enc2,$spk"
fit calibration_keyword_plus-encoder_nm              encoder "$kw,$enc2,$nm"        "$kw,$enc2,$nm"
fit calibration_plus-encoder_voice-encoder_nm        encoder "$kw,$enc2,$nm,$spk"   "$kw,$enc2,$nm,$spk"
fit calibration_keyword_plus-encoder_matcher         encoder "$kw,$enc2,$cnn"       "$kw,$enc2,$cnn"
fit calibration_plus-encoder_matcher_voice-encoder   encoder "$kw,$enc2,$cnn,$spk"  "$kw,$enc2,$cnn,$spk"
fit calibration_plus-encoder_voice-both              bothplus "$kw,$enc2,$spk"      "$kw,$enc2,$spk"
fit calibration_keyword_plus-encoder_ewn            ewnboth "$kw,$enc2,$ewn"        "$kw,$enc2,$ewn"
fit calibration_plus-encoder_ewn_voice-both         ewnboth "$kw,$enc2,$ewn,$spk"   "$kw,$enc2,$ewn,$spk"
fit calibration_plus-encoder_voice-trunk             trunk "$kw,$enc2,$spk"         "$kw,$enc2,$spk"
# the noise-floor MFCC front end (features.frontend=mfcc-ns) beside the default second front end
fit calibration_keyword_mfcc-ns_plus-encoder         ns "$kw,$enc2"                 "$kw,$enc2"
fit calibration_mfcc-ns_plus-encoder_voice-encoder   ns "$kw,$enc2,$spk"            "$kw,$enc2,$spk"
fit calibration_keyword_plus-gse                     gseplus "$kw,$gse2"            "$kw,$gse2"
fit calibration_plus-gse_voice-encoder               gseplus "$kw,$gse2,$spk"       "$kw,$gse2,$spk"
fit calibration_plus-gse_voice-both                  gseboth "$kw,$gse2,$spk"       "$kw,$gse2,$spk"
# without the second front end (DetectConfig.second_frontend=""): every table kind
fit calibration_keyword                encoder "$kw"              "$kw"
fit calibration                        ge2e    "$kw,$spk"         "$kw,$spk"
fit calibration_voice-encoder          encoder "$kw,$spk"         "$kw,$spk"
fit calibration_keyword_nm             encoder "$kw,$nm"          "$kw,$nm"
fit calibration_voice-encoder_nm       encoder "$kw,$nm,$spk"     "$kw,$nm,$spk"
fit calibration_voice-both             both    "$kw,$spk"         "$kw,$spk"
fit calibration_keyword_matcher        encoder "$kw,$cnn"       "$kw,$cnn"
fit calibration_matcher                ge2e    "$kw,$cnn,$spk"  "$kw,$cnn,$spk"
fit calibration_matcher_voice-encoder  encoder "$kw,$cnn,$spk"  "$kw,$cnn,$spk"
fit calibration_keyword_encoder        frames-encoder "$kw"     "$kw"
fit calibration_encoder                frames  "$kw,$spk"         "$kw,$spk"
fit calibration_encoder_voice-encoder  frames-encoder "$kw,$spk"  "$kw,$spk"
