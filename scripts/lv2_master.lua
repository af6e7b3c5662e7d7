-- Mastering a finished stereo mix with third-party LV2 plugins from Debian (x42-plugins and
-- lsp-plugins-lv2; `stemgraph plugins compressor_stereo` lists a plugin's parameters):
-- the native EQ, LSP's stereo compressor as glue (its ratio automated up for the last section),
-- and x42's digital peak limiter in true-peak mode. The compressor's lookahead and the
-- limiter's latency are reported by the plugins and compensated like any native latency.
-- Input: the demo song's reference mix (`make demo` writes it to demo/stems/mix.wav).

local s = session { title = "LV2 Master" }
local mix = s:stem("mix", "../demo/stems/mix.wav")
mix:chain {
  eq { bands = { low_shelf { freq_hz = 80, gain_db = 1.0, q = 0.7 } } },
  plugin {
    id = "glue",
    lv2 = "http://lsp-plug.in/plugins/lv2/compressor_stereo",
    -- Thresholds and gains are linear in LSP's ports: al = 0.125 is -18 dB, mk = 1.4 is +3 dB.
    params = { al = 0.125, cr = 1.8, at = 20, rt = 150, kn = 0.5, mk = 1.4 },
  },
  plugin {
    id = "limit",
    lv2 = "http://gareus.org/oss/lv2/dpl#stereo",
    params = { gain = 3, threshold = -1, truepeak = 1, release = 0.05 },
  },
}:to(s:output())
s:automate("glue.cr", { { "0:10", 1.8 }, { "0:11", 2.5 } })
s:deliver { file = "{title} 24bit.wav", bits = 24 }
return s
