-- The demo recipe: the built-in demo song's four stems into a master bus, then a master chain.
-- `stemgraph demo` writes the stems beside this file and renders it.

local s = session {
  title = "stemgraph demo",
  reference = "stems/mix.wav",
}

local master = s:bus "master"

s:stem("drums", "stems/drums.wav"):to(master)
s:stem("bass", "stems/bass.wav", { gain_db = -0.5 }):to(master)
s:stem("keys", "stems/keys.wav"):chain { pan { pan = -0.1 } }:to(master)
s:stem("lead", "stems/lead.wav", { gain_db = 0.5 }):to(master)

master:chain {
  gain { gain_db = 3.0 },
}:to(s:output "main")

s:deliver { file = "{title} 24bit.wav", bits = 24 }

return s
