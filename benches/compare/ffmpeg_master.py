#!/usr/bin/env python3
"""The full mastering job of workload M done with ffmpeg, for the record (benches/compare).

R's stem strips and sum as compare.py writes them (`ffmpeg_filter_complex.txt`), then what an
ffmpeg user would run for a loudness-targeted master: `loudnorm` two-pass (pass 1 measures,
pass 2 applies it linearly to -14 LUFS, -1 dBTP), `alimiter` at -1 dBFS (sample peak: ffmpeg
has no true-peak limiter), back to 48 kHz (loudnorm works at 192 kHz), a 24-bit 48 kHz file and
a 16-bit 44.1 kHz one (`aresample` with triangular dither).

    ffmpeg_master.py GRAPH_FILE OUT_DIR STEM.wav...
"""
import json
import re
import subprocess
import sys
from pathlib import Path


def main():
    graph = Path(sys.argv[1]).read_text().strip()
    out = Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    stems = sys.argv[3:]
    base = ["ffmpeg", "-nostdin", "-hide_banner", "-y", "-filter_complex_threads", "1", "-threads", "1"]
    for s in stems:
        base += ["-threads", "1", "-i", s]
    target = "I=-14:TP=-1:LRA=20"
    # Pass 1: measure.
    p1 = subprocess.run(
        base + ["-filter_complex", f"{graph};[out]loudnorm={target}:print_format=json[m]",
                "-map", "[m]", "-f", "null", "-"],
        capture_output=True, text=True, check=True)
    m = json.loads(re.findall(r"\{[^{}]*\}", p1.stderr)[-1])
    measured = (f"measured_I={m['input_i']}:measured_TP={m['input_tp']}:"
                f"measured_LRA={m['input_lra']}:measured_thresh={m['input_thresh']}:"
                f"offset={m['target_offset']}:linear=true")
    # Pass 2: apply, limit, resample, dither, two files.
    chain = (f"{graph};[out]loudnorm={target}:{measured},aresample=48000,"
             "alimiter=limit=0.891251:attack=1.5:release=50:asc=0:level=0:latency=1,"
             "asplit=2[a][b];[b]aresample=44100:dither_method=triangular[c]")
    subprocess.run(
        base + ["-loglevel", "error", "-filter_complex", chain,
                "-map", "[a]", "-c:a", "pcm_s24le", str(out / "ffmpeg_master 24bit.wav"),
                "-map", "[c]", "-c:a", "pcm_s16le", str(out / "ffmpeg_master 16bit 44k1.wav")],
        check=True)


if __name__ == "__main__":
    main()
