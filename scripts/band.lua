-- A song from the four-stem band template, overriding only what differs.
-- Stems: the demo song (`make demo` writes them to demo/stems).

local band = template "band_4stem"

return band {
  title = "Song One",
  tempo_bpm = 120,
  sections = { chorus = { bar = 9 } },
  stems = {
    drums = "../demo/stems/drums.wav",
    bass = "../demo/stems/bass.wav",
    music = "../demo/stems/keys.wav",
    vocals = "../demo/stems/lead.wav",
  },
  reference = "../demo/stems/mix.wav",
  vocals = { gain_db = 1.0, eq = { high_pass { freq_hz = 90, slope_db = 24 }, bell { freq_hz = 3500, gain_db = -1.5, q = 2 } } },
  automation = { ["vocals.gain_db"] = { { "chorus", 1.0 }, { { bar = 11 }, 2.0, "smooth" } } },
  master = { target_lufs = -14, ceiling_dbtp = -1 },
  deliver = {
    wav { file = "{title} 24bit.wav", bits = 24 },
    wav { file = "{title} 16bit 44k1.wav", bits = 16, sample_rate_hz = 44100, dither = "tpdf" },
  },
}
