-- Mastering a finished stereo mix (one "stem") with the stereo master chain template.
-- Input: the demo song's reference mix (`make demo` writes it to demo/stems/mix.wav).

local master_chain = template "master_chain"

local s = session { title = "Stereo Master", target_lufs = -12, ceiling_dbtp = -1 }
local mix = s:stem("mix", "../demo/stems/mix.wav")
master_chain(s, mix, {
  eq = { low_shelf { freq_hz = 80, gain_db = 1.0, q = 0.7 }, bell { freq_hz = 2500, gain_db = -0.5, q = 1.0 } },
  glue = { threshold_db = -18, ratio = 1.8 },
})
s:deliver { file = "{title} 24bit.wav", bits = 24 }
return s
