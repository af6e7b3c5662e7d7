-- The full mastering chain on the reference stems (benches/compare/run.sh, workload M): R's six
-- stem strips, then a master chain as a mastering engineer would run it, to -14 LUFS: high-pass and a bell,
-- glue compression, width with a mono low end, and the true-peak limiter detecting at 8x, to a
-- 24-bit 48 kHz master and a TPDF-dithered 16-bit 44.1 kHz deliverable. Set beside R, it shows
-- what the better limiter, the resampling and the dither cost.

local s = session { title = "mastering", target_lufs = -14 }
local master = s:bus "master"

local function strip(name, b1, b2, comp, gain_db)
  s:stem(name, "stems/" .. name .. ".wav"):chain {
    eq { bands = { bell(b1), bell(b2) } },
    compressor {
      detector = "peak", link_pct = 100, knee_db = 6, makeup_db = 0,
      threshold_db = comp[1], ratio = comp[2], attack_ms = comp[3], release_ms = comp[4],
    },
    gain { gain_db = gain_db },
  }:to(master)
end

strip("drums", { freq_hz = 100, gain_db = 2.0, q = 1.0 },  { freq_hz = 5000, gain_db = -1.5, q = 1.5 }, { -18, 3.0, 10, 120 }, -1.0)
strip("bass",  { freq_hz = 80, gain_db = 1.5, q = 0.8 },   { freq_hz = 700, gain_db = -2.0, q = 2.0 },  { -22, 4.0, 20, 150 }, -2.0)
strip("keys",  { freq_hz = 300, gain_db = -2.0, q = 1.0 }, { freq_hz = 2500, gain_db = 1.0, q = 0.7 }, { -20, 2.5, 15, 200 }, -3.0)
strip("lead",  { freq_hz = 250, gain_db = -1.5, q = 1.2 }, { freq_hz = 3500, gain_db = 2.0, q = 1.0 }, { -24, 3.0, 5, 100 },  0.0)
strip("pads",  { freq_hz = 500, gain_db = -1.0, q = 0.7 }, { freq_hz = 8000, gain_db = 1.5, q = 0.7 }, { -26, 2.0, 30, 300 }, -4.0)
strip("perc",  { freq_hz = 200, gain_db = -2.0, q = 1.0 }, { freq_hz = 6000, gain_db = 1.0, q = 1.5 }, { -20, 3.0, 5, 80 },   -3.0)

master:chain {
  eq { id = "master.eq", bands = { high_pass { freq_hz = 25, slope_db = 24 }, bell { freq_hz = 3000, gain_db = 1.0, q = 0.7 } } },
  compressor { id = "master.glue", threshold_db = -20, ratio = 2.0, attack_ms = 30, release_ms = 250, knee_db = 6 },
  width { id = "master.width", width_pct = 110, mono_below_hz = 120 },
  gain { id = "master.gain", gain_db = 7.0 },
  limiter { id = "master.limiter", ceiling_dbtp = -1.0, release_ms = 50, lookahead_ms = 1.5, oversampling = 8 },
}:to(s:output "main")

s:deliver { file = "{title} 24bit.wav", bits = 24 }
s:deliver { file = "{title} 16bit 44k1.wav", bits = 16, sample_rate_hz = 44100, dither = "tpdf" }
return s
