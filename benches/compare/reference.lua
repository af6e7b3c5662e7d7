-- The reference workload R of the side-by-side benchmark (benches/compare/run.sh).
--
-- Six stereo stems (`stemgraph demo --stems 6 --seconds 240 --no-render`), each through two EQ
-- bells, a compressor and a gain, summed at unity on a master bus; the master through one EQ
-- band, a glue compressor, a gain and a limiter at -1 dB; one 24-bit WAV at the session rate.
-- ffmpeg.py and pedalboard_render.py build the same chain from the same numbers (settings.py):
-- keep the three in step (run.sh checks that the renders agree).
--
-- The limiter detects sample peaks (`oversampling = 1`), as ffmpeg's alimiter and pedalboard's
-- Limiter do, so that the three do the same work; run.sh also renders R with 4x true-peak
-- detection (R*), and the full mastering chain (mastering.lua) shows the price of 8x detection,
-- dither and a 16-bit 44.1 kHz deliverable.

local s = session { title = "reference" }
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

--    stem      bell 1                                       bell 2                                        threshold, ratio, attack, release   gain
strip("drums", { freq_hz = 100, gain_db = 2.0, q = 1.0 },  { freq_hz = 5000, gain_db = -1.5, q = 1.5 }, { -18, 3.0, 10, 120 },           -1.0)
strip("bass",  { freq_hz = 80, gain_db = 1.5, q = 0.8 },   { freq_hz = 700, gain_db = -2.0, q = 2.0 },  { -22, 4.0, 20, 150 },           -2.0)
strip("keys",  { freq_hz = 300, gain_db = -2.0, q = 1.0 }, { freq_hz = 2500, gain_db = 1.0, q = 0.7 }, { -20, 2.5, 15, 200 },           -3.0)
strip("lead",  { freq_hz = 250, gain_db = -1.5, q = 1.2 }, { freq_hz = 3500, gain_db = 2.0, q = 1.0 }, { -24, 3.0, 5, 100 },            0.0)
strip("pads",  { freq_hz = 500, gain_db = -1.0, q = 0.7 }, { freq_hz = 8000, gain_db = 1.5, q = 0.7 }, { -26, 2.0, 30, 300 },           -4.0)
strip("perc",  { freq_hz = 200, gain_db = -2.0, q = 1.0 }, { freq_hz = 6000, gain_db = 1.0, q = 1.5 }, { -20, 3.0, 5, 80 },             -3.0)

master:chain {
  eq { id = "master.eq", bands = { bell { freq_hz = 3000, gain_db = 1.0, q = 0.7 } } },
  compressor {
    id = "master.glue", detector = "peak", link_pct = 100, knee_db = 6, makeup_db = 0,
    threshold_db = -20, ratio = 2.0, attack_ms = 30, release_ms = 250,
  },
  gain { id = "master.gain", gain_db = 7.0 },
  limiter { id = "master.limiter", ceiling_dbtp = -1.0, release_ms = 50, lookahead_ms = 1.5, oversampling = 1 },
}:to(s:output "main")

s:deliver { file = "reference.wav", bits = 24 }
return s
