#!/usr/bin/env bash
# The `restore bench` commands behind every table in benchmarks/results/bench/, in one place.
#
#   bash benchmarks/bench_tables.sh            # all of them (about 2.5 h on a 2-core CPU)
#   bash benchmarks/bench_tables.sh sr_set5    # one of them by name
#
# Each run is resumable: records already in a table's .jsonl are not redone, so a
# rerun only fills what is missing (delete a .jsonl to measure again). The data
# sets are read from ../shared/data (override with DATA=...). Timings are only
# comparable within a table: run it on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
OUT=benchmarks/results/bench
COMMON=(--threads 2 -q -o "$OUT")

denoise_cbsd68() { restore bench --task denoise --dataset "$DATA/CBSD68" --sigma 15 25 50 --models lidia,bm3d,nlm,rddm "${COMMON[@]}"; }
denoise_set12() { restore bench --task denoise --dataset "$DATA/Set12" --sigma 15 25 50 --models lidia,bm3d,nlm,rddm "${COMMON[@]}"; }
denoise_ffhq() { restore bench --task denoise --dataset "$DATA/FFHQ_samples" --sigma 25 --models lidia,bm3d,nlm,rddm,vble "${COMMON[@]}"; }
sr_set5() { restore bench --task sr --scale 2 4 --dataset "$DATA/Set5" --models bicubic,onestep-sr,rddm "${COMMON[@]}"; }
sr_set14() { restore bench --task sr --scale 4 --dataset "$DATA/Set14" --models bicubic,onestep-sr,rddm "${COMMON[@]}"; }
# RED-Diff takes 100 prior evaluations per image: its SR row is measured on central 256 x 256 crops.
sr_set14_crops() { restore bench --task sr --scale 4 --dataset "$DATA/Set14" --crop 256 --models bicubic,onestep-sr,rddm,reddiff "${COMMON[@]}"; }
sr_bsd100() { restore bench --task sr --scale 4 --dataset "$DATA/BSD100" --models bicubic,onestep-sr,rddm "${COMMON[@]}"; }
deblur_cbsd68() { restore bench --task deblur --dataset "$DATA/CBSD68" --kernel gaussian:2.0 --sigma 2.55 --crop 256 --limit 12 --models vble,reddiff,rddm "${COMMON[@]}"; }
inpaint_cbsd68() { restore bench --task inpaint --dataset "$DATA/CBSD68" --crop 256 --limit 12 --models vble,reddiff "${COMMON[@]}"; }

ALL=(denoise_cbsd68 denoise_set12 denoise_ffhq sr_set5 sr_set14 sr_set14_crops sr_bsd100 deblur_cbsd68 inpaint_cbsd68)
for table in "${@:-${ALL[@]}}"; do
    if [[ " ${ALL[*]} " != *" $table "* ]]; then
        echo "unknown table '$table'; tables: ${ALL[*]}" >&2
        exit 2
    fi
    echo "== $table" >&2
    "$table"
done
