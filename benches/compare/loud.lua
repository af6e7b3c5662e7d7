-- The loud master of issue 14 (benches/compare/run.sh, workload L): four stems at 44.1 kHz
-- summed, master high-pass + bell, glue compressor and the true-peak limiter detecting at 8x,
-- to -9 LUFS, and five deliverables: 24- and dithered 16-bit at 44.1 kHz, 24-bit at 48 and
-- 96 kHz, FLAC. The limiter works hard here: the loudness solve's passes and every resampled
-- deliverable's safety limiter are what it measures.
local s = session { title = "loud", target_lufs = -9 }
local master = s:bus "master"
for _, name in ipairs { "drums", "bass", "keys", "lead" } do
  s:stem(name, "stems/" .. name .. ".wav"):to(master)
end
master:chain {
  eq { bands = { high_pass { freq_hz = 30, slope_db = 12 }, bell { freq_hz = 2500, gain_db = 1.0, q = 0.8 } } },
  compressor { threshold_db = -18, ratio = 2.0, attack_ms = 20, release_ms = 200, knee_db = 6 },
  limiter { id = "master.limiter", ceiling_dbtp = -1.0, release_ms = 60, oversampling = 8 },
}:to(s:output "main")
s:deliver { file = "{title} 24bit.wav", bits = 24 }
s:deliver { file = "{title} 16bit.wav", bits = 16, dither = "tpdf" }
s:deliver { file = "{title} 48k.wav", bits = 24, sample_rate_hz = 48000 }
s:deliver { file = "{title} 96k.wav", bits = 24, sample_rate_hz = 96000 }
s:deliver { file = "{title}.flac", format = "flac", bits = 24 }
return s
