-- Another recipe for the side-by-side benchmark (benches/compare/run.sh, workload O), on the
-- eight-stem version of the demo song: other processors, other routing, so that nothing in the
-- engine can be tuned to the reference chain alone. Saturation (8x oversampled), a de-esser,
-- multiband compression, stereo width, pans, a side-chained bass, a synth bus and a delay return;
-- the master through multiband, width and the true-peak limiter.

local s = session { title = "other", tempo_bpm = 120 }
local master = s:bus "master"
local synths = s:bus "synths"
local echo = s:bus "echo"

local drums = s:stem("drums", "stems/drums.wav")
drums:chain {
  eq { bands = { high_pass { freq_hz = 30 }, low_shelf { freq_hz = 90, gain_db = 1.5 } } },
  saturation { character = "tape", drive_db = 4, mix_pct = 60 },
}:to(master)

local duck = s:stem("bass", "stems/bass.wav"):chain {
  eq { bands = { high_pass { freq_hz = 28, slope_db = 24 } } },
  compressor { id = "bass.duck", threshold_db = -26, ratio = 5, attack_ms = 2, release_ms = 110, knee_db = 3 },
}
drums:key(duck)
duck:chain { saturation { character = "tube", drive_db = 6, mix_pct = 40 } }:to(master)

s:stem("perc", "stems/perc.wav"):chain { pan { pan = 0.3 }, width { width_pct = 130 } }:to(master)
for _, name in ipairs { "keys", "pads", "arp" } do
  s:stem(name, "stems/" .. name .. ".wav"):chain {
    eq { bands = { high_pass { freq_hz = 140 }, high_shelf { freq_hz = 9000, gain_db = 1.0 } } },
    pan { pan = name == "arp" and -0.25 or 0.0 },
  }:to(synths)
end
synths:chain {
  multiband { crossovers_hz = { 250, 3000 }, bands = { { ratio = 2, threshold_db = -24 }, { ratio = 1.5 }, { ratio = 2, threshold_db = -30 } } },
  width { width_pct = 120, mono_below_hz = 150 },
}:to(master)

local lead = s:stem("lead", "stems/lead.wav"):chain {
  eq { bands = { high_pass { freq_hz = 110, slope_db = 24 }, bell { freq_hz = 2800, gain_db = 1.5, q = 1.0 } } },
  deesser { freq_hz = 6500, threshold_db = -32, ratio = 4 },
  compressor { threshold_db = -22, ratio = 3, attack_ms = 4, release_ms = 90, detector = "rms" },
}
lead:to(master)
lead:to(echo, { gain_db = -16 })
local backing = s:stem("backing", "stems/backing.wav"):chain {
  deesser { mode = "high", freq_hz = 7000, threshold_db = -34 },
  pan { pan = -0.35 },
}
backing:to(master, { gain_db = -2 })
backing:to(echo, { gain_db = -20 })
echo:chain { delay { note = "1/4.", tempo_bpm = 120, feedback_pct = 35, low_cut_hz = 250, high_cut_hz = 5000 } }:to(master)

master:chain {
  multiband { id = "master.mb", crossovers_hz = { 120, 1000, 6000 }, bands = { { ratio = 2, threshold_db = -20 }, { ratio = 1.5, threshold_db = -22 }, { ratio = 1.5, threshold_db = -24 }, { ratio = 2, threshold_db = -28 } } },
  width { id = "master.width", width_pct = 110 },
  gain { id = "master.gain", gain_db = 6.0 },
  limiter { id = "master.limiter", ceiling_dbtp = -1.0, release_ms = 80, oversampling = 4 },
}:to(s:output "main")

s:deliver { file = "other.wav", bits = 24 }
return s
