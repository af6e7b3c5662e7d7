-- A worked example of `stemgraph match` (see docs/matching.md): a "reference" made from the
-- demo song's stems with a known change, so the proposal can be checked against the truth.
-- It is scripts/demo.lua with the bass 3 dB up and the lead (and its delay return) 2 dB down
-- in the mix, a +2 dB high shelf at 8 kHz and a +1.5 dB tilt after the master bus, and 2 dB
-- louder.
--
--   make demo                                   # or: stemgraph demo --no-render --out demo
--   stemgraph render scripts/match_reference.lua
--   stemgraph match demo/demo.lua --reference "scripts/out/match reference 24bit.wav" \
--       --write demo/demo.match.lua
--   stemgraph render demo/demo.match.lua        # the proposal, rendered
--
-- demo/demo.match.lua proposes the bass about +3 dB and the lead about -2 dB on their sends, a
-- tilt and a high shelf near 8 kHz after the master bus and a -12 LUFS target, each line with
-- its reason; demo/match/match.md (and .json, .png) says how close the proposal gets.


local s = session {
  title = "match reference",
    tempo_bpm = 120,
  target_lufs = -12,
  ceiling_dbtp = -1.0,
  fade_out = { length = 1.5, shape = "sine" },
}

local master = s:bus "master"

s:stem("drums", "../demo/stems/drums.wav"):chain {
  eq { bands = { high_pass { freq_hz = 30 }, bell { freq_hz = 4000, gain_db = 1.0, q = 1.0 } } },
  compressor { threshold_db = -18, ratio = 3, attack_ms = 10, release_ms = 120, knee_db = 6 },
}:to(master)

local bass = s:stem("bass", "../demo/stems/bass.wav", { gain_db = -0.5 }):chain {
  eq { bands = { high_pass { freq_hz = 28, slope_db = 24 }, bell { freq_hz = 250, gain_db = -1.5, q = 1.0 } } },
  compressor { threshold_db = -22, ratio = 4, attack_ms = 20, release_ms = 150, knee_db = 6 },
}
bass:to(master, { gain_db = 3 })

s:stem("keys", "../demo/stems/keys.wav"):chain {
  eq { bands = { high_pass { freq_hz = 90 }, bell { freq_hz = 400, gain_db = -1.0, q = 0.8 } } },
  pan { pan = -0.1 },
}:to(master)

local lead = s:stem("lead", "../demo/stems/lead.wav", { gain_db = 0.5 }):chain {
  eq { bands = { high_pass { freq_hz = 100, slope_db = 24 }, bell { freq_hz = 3000, gain_db = 1.0, q = 1.2 } } },
  deesser { freq_hz = 6500, threshold_db = -32, ratio = 4 },
  compressor { threshold_db = -24, ratio = 3, attack_ms = 5, release_ms = 100, knee_db = 6 },
}
lead:to(master, { gain_db = -2 })

-- A dotted-eighth delay return for the lead.
local echo = s:bus "echo"
lead:to(echo, { gain_db = -18 })
echo:chain {
  delay { note = "1/8.", tempo_bpm = 120, feedback_pct = 30, mix_pct = 100, low_cut_hz = 300, high_cut_hz = 6000 },
}:to(master, { gain_db = -2 })

master:chain {
  eq { id = "master.reference_eq", bands = { high_shelf { freq_hz = 8000, gain_db = 2, q = 0.707 }, tilt { freq_hz = 1000, gain_db = 1.5 } } },
  eq { bands = { high_pass { freq_hz = 25, slope_db = 24 }, high_shelf { freq_hz = 10000, gain_db = 1.0, q = 0.7 } } },
  compressor { id = "master.glue", threshold_db = -20, ratio = 2, attack_ms = 30, release_ms = 250, knee_db = 6 },
  width { width_pct = 110, mono_below_hz = 120 },
  limiter { ceiling_dbtp = -1.0, release_ms = 60, lookahead_ms = 1.5 },
}:to(s:output "main")

-- The lead rides up 1 dB into the last chorus.
s:automate("lead.gain_db", { { 24, 0.5 }, { 26, 1.5, "smooth" } })

s:deliver { file = "{title} 24bit.wav", bits = 24 }
s:deliver { file = "{title} 16bit 44k1.wav", bits = 16, sample_rate_hz = 44100, dither = "tpdf" }

return s
