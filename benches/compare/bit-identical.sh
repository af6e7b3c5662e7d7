#!/usr/bin/env bash
# Renders the demo, the example recipes (scripts/*.lua) and the benchmark recipes
# (benches/compare/*.lua) with two builds of stemgraph and compares every audio file they write,
# byte for byte. A refactoring that "changes no sound" must print "identical" for every file.
#
#   benches/compare/bit-identical.sh OLD_STEMGRAPH NEW_STEMGRAPH [--seconds S] [--work DIR]
#
# The stems are written once, by OLD (`demo --no-render`), and both builds render the same files.
# Exit status 0 when every file is identical, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
old=$(realpath "$1")
new=$(realpath "$2")
shift 2
secs=30
work=$(mktemp -d)
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) secs=$2; shift 2 ;;
    --work) work=$2; rm -rf "$work"; mkdir -p "$work"; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
export STEMGRAPH_CACHE_DIR="$work/cache"
echo "work folder: $work" >&2

# Stems, by the old build: the demo song (for scripts/), six stems (R) and eight (W8).
"$old" demo --no-render --seconds "$secs" --out "$work/demo" >/dev/null
"$old" demo --no-render --stems 8 --seconds "$secs" --out "$work/demo8" >/dev/null
"$old" demo --no-render --stems 6 --seconds "$secs" --out "$work/R" >/dev/null
"$old" demo --no-render --stems 8 --seconds "$secs" --out "$work/W8" >/dev/null
cp -r "$root/scripts" "$root/graphs" "$work/"
cp "$root/scripts/demo.lua" "$work/demo/demo.lua"
cp "$root/benches/compare/reference.lua" "$root/benches/compare/mastering.lua" "$work/R/"
sed 's/oversampling = 1/oversampling = 4/' "$root/benches/compare/reference.lua" > "$work/R/reference_tp4.lua"
cp "$root/benches/compare/other.lua" "$work/W8/"

# scripts/demo.lua reads the demo song's stems from beside it: it renders from the demo folder.
recipes=("$work"/demo/demo.lua)
for f in "$work"/scripts/*.lua "$work"/R/*.lua "$work"/W8/*.lua; do
  [ "$f" = "$work/scripts/demo.lua" ] || recipes+=("$f")
done
status=0
compare_dirs() { # label, old dir, new dir
  local label=$1 a=$2 b=$3 found=0
  while IFS= read -r -d '' f; do
    found=1
    rel=${f#"$a"/}
    if [ ! -f "$b/$rel" ]; then
      echo "MISSING   $label: $rel (only the old build wrote it)"; status=1
    elif cmp -s "$f" "$b/$rel"; then
      echo "identical $label: $rel ($(stat -c %s "$f") bytes)"
    else
      echo "DIFFERENT $label: $rel"; status=1
    fi
  done < <(find "$a" -type f \( -name '*.wav' -o -name '*.flac' -o -name '*.mp3' -o -name '*.opus' \) -print0 | sort -z)
  if [ $found = 0 ]; then echo "NO AUDIO  $label (the old build wrote no audio file)"; status=1; fi
}

# The demo command's own render.
"$old" demo --seconds "$secs" --out "$work/demo-old" >/dev/null
"$new" demo --seconds "$secs" --out "$work/demo-new" >/dev/null
compare_dirs "demo" "$work/demo-old/out" "$work/demo-new/out" 2>/dev/null || true
[ -d "$work/demo-old/out" ] || compare_dirs "demo" "$work/demo-old" "$work/demo-new"

for r in "${recipes[@]}"; do
  name=$(basename "$r" .lua)
  dir=$(dirname "$r")
  label="$(basename "$dir")/$name"
  # Scripts that are album modules or need a template path still render from their folder.
  if ! "$old" render "$r" --out "$work/out-old/$label" >/dev/null 2>"$work/err-old"; then
    echo "skipped   $label: the old build does not render it ($(tail -1 "$work/err-old"))"
    continue
  fi
  if ! "$new" render "$r" --out "$work/out-new/$label" >/dev/null 2>"$work/err-new"; then
    echo "FAILED    $label: the new build does not render it ($(tail -1 "$work/err-new"))"; status=1
    continue
  fi
  compare_dirs "$label" "$work/out-old/$label" "$work/out-new/$label"
done
if [ $status = 0 ]; then echo "all renders byte-identical"; else echo "renders differ"; fi
exit $status
