#!/usr/bin/env bash
# The side-by-side benchmark: stemgraph vs ffmpeg's filter graph vs Spotify's pedalboard, same
# chain, same run; writes docs/PERFORMANCE.md. Takes several minutes. Not part of .ci/run.
#
#   benches/compare/run.sh [--reps N] [--no-long] [--no-realtime] [--work DIR]
#                          [--baseline-bin OLD_STEMGRAPH --baseline-label TEXT]
#
# --baseline-bin adds an older build's renders of R*, M and O (e.g. the commit before the
# optimization work: `git worktree add ../base 8bcc619 && cargo build --release` there), and the
# speed-up per recipe.
#
# Needs ffmpeg on the PATH and `pip install pedalboard numpy` for the Python on the PATH.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
work="$CARGO_TARGET_DIR/compare"
args=()
realtime=1
while [ $# -gt 0 ]; do
  case "$1" in
    --work) work=$2; shift 2 ;;
    --no-realtime) realtime=0; shift ;;
    *) args+=("$1"); shift ;;
  esac
done
command -v ffmpeg >/dev/null || { echo "run.sh needs ffmpeg (apt-get install -y ffmpeg)" >&2; exit 1; }
python3 -c 'import pedalboard, numpy' 2>/dev/null || {
  echo "run.sh needs pedalboard and numpy for python3 (pip install pedalboard numpy)" >&2; exit 1; }
echo "building stemgraph (release)" >&2
cargo build --release --quiet
mkdir -p "$work"
rt=()
if [ $realtime = 1 ]; then
  echo "measuring the real-time callback (benches/realtime.rs)" >&2
  cargo bench --quiet --bench realtime -- --stems-dir "$work/rt" --seconds 60 > "$work/realtime.md"
  rt=(--realtime-md "$work/realtime.md")
fi
exec python3 benches/compare/compare.py --bin "$CARGO_TARGET_DIR/release/stemgraph" \
  --work "$work" --out "$root/docs/PERFORMANCE.md" "${rt[@]}" \
  --command "benches/compare/run.sh${args[*]:+ ${args[*]}}" "${args[@]}"
