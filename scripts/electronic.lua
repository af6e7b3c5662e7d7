-- An eight-stem electronic track from the electronic template, mastered loud.
-- Stems: the demo song with eight stems (`stemgraph demo --stems 8 --no-render --out demo8`).

local track = template "electronic_8stem"

local stems = {}
for _, name in ipairs { "drums", "bass", "perc", "keys", "pads", "arp", "lead", "backing" } do
  stems[name] = "../demo8/stems/" .. name .. ".wav"
end

return track {
  title = "Night Drive",
  tempo_bpm = 120,
  stems = stems,
  reference = "../demo8/stems/mix.wav",
  bass = { duck_db = -26, duck_release_ms = 100 },
  lead = { gain_db = 0.5 },
  master = { target_lufs = -9, ceiling_dbtp = -1, width = { width_pct = 115 } },
  deliver = { wav { file = "{title} 24bit.wav", bits = 24 } },
}
