#!/usr/bin/env python3
"""Renders the reference workload with Spotify's pedalboard, streamed in blocks.

Usage: pedalboard_render.py CHAIN.json OUT.wav

CHAIN.json is written by compare.py from the recipe's compiled graph (`stemgraph graph`), so the
numbers are the recipe's: every stem through its plugins, the stems summed at unity with numpy,
the sum through the master plugins, written as 24-bit WAV. Stems are read and processed in blocks
(`reset=False` keeps the plugins' state between blocks), as a careful user would stream a long
song instead of loading six stems whole.
"""

import json
import sys

import numpy as np
from pedalboard import Compressor, Gain, Limiter, PeakFilter, Pedalboard
from pedalboard.io import AudioFile

BLOCK = 16384


def plugin(p):
    kind = p["kind"]
    if kind == "bell":
        return PeakFilter(cutoff_frequency_hz=p["freq_hz"], gain_db=p["gain_db"], q=p["q"])
    if kind == "compressor":
        # JUCE's compressor: peak ballistics with time constants attack_ms / release_ms (the
        # time to 63 %, as stemgraph's), hard knee, channels not linked (no option for either).
        return Compressor(
            threshold_db=p["threshold_db"],
            ratio=p["ratio"],
            attack_ms=p["attack_ms"],
            release_ms=p["release_ms"],
        )
    if kind == "gain":
        return Gain(gain_db=p["gain_db"])
    if kind == "limiter":
        # JUCE's limiter is a 4:1 compressor at -10 dBFS, a 1000:1 one at the threshold, a fixed
        # makeup of 3.75 dB minus the threshold, and a clip at 0 dBFS. The Gain after it takes
        # the makeup back, so the chain is at unity below the threshold like the others.
        return [
            Limiter(threshold_db=p["ceiling_db"], release_ms=p["release_ms"]),
            Gain(gain_db=p["ceiling_db"] - 3.75),
        ]
    raise SystemExit(f"pedalboard_render.py: no pedalboard plugin for {kind}")


def board(steps):
    plugins = []
    for p in steps:
        made = plugin(p)
        plugins += made if isinstance(made, list) else [made]
    return Pedalboard(plugins)


def main():
    chain = json.load(open(sys.argv[1]))
    out = sys.argv[2]
    stems = [
        (AudioFile(s["path"]), board(s["chain"]))
        for s in chain["stems"]
    ]
    master = board(chain["master"])
    rate = stems[0][0].samplerate
    with AudioFile(out, "w", rate, 2, bit_depth=24) as o:
        while True:
            acc = None
            for f, strip in stems:
                x = f.read(BLOCK)
                if x.shape[1] == 0:
                    continue
                y = strip(x, rate, reset=False)
                acc = y if acc is None else acc + y
            if acc is None:
                break
            o.write(master(acc.astype(np.float32), rate, reset=False))
    for f, _ in stems:
        f.close()


if __name__ == "__main__":
    main()
