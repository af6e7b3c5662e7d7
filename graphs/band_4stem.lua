-- A four-stem band: drums, bass, music, vocals, each with its own strip, a vocal delay return,
-- and the stereo master chain.
--
--   local band = template "band_4stem"
--   return band {
--     title = "Song One",
--     stems = { drums = "stems/drums.wav", bass = "stems/bass.wav",
--               music = "stems/music.wav", vocals = "stems/vocals.wav" },
--     reference = "stems/mix.wav",
--     vocals = { gain_db = 1.0, eq = { bell { freq_hz = 3500, gain_db = -1.5, q = 2 } } },
--     automation = { ["vocals.gain_db"] = { { "0:00", 1.0 }, { "1:12", 1.0 }, { "1:14", 2.5, "smooth" } } },
--     master = { target_lufs = -14, ceiling_dbtp = -1 },
--     deliver = { wav { bits = 24 }, wav { bits = 16, sample_rate_hz = 44100 } },
--   }
--
-- Per stem: `gain_db`, `pan`, `eq` (a list of bands, replacing the default list), `compressor`
-- (overrides, or false), and for the vocals `deesser` and `delay_send_db` (−inf… : false turns
-- the delay return off). `master` takes `target_lufs`, `ceiling_dbtp` and the master chain's
-- stages (see master_chain.lua).

local master_chain = template "master_chain"

local strips = {
  drums = {
    eq = { high_pass { freq_hz = 30, slope_db = 12 } },
    compressor = { threshold_db = -18, ratio = 3, attack_ms = 10, release_ms = 120, knee_db = 6 },
  },
  bass = {
    eq = { high_pass { freq_hz = 28, slope_db = 24 }, bell { freq_hz = 250, gain_db = -1.0, q = 1.0 } },
    compressor = { threshold_db = -20, ratio = 4, attack_ms = 20, release_ms = 150, knee_db = 6 },
  },
  music = {
    eq = { high_pass { freq_hz = 40, slope_db = 12 } },
    compressor = false,
  },
  vocals = {
    eq = { high_pass { freq_hz = 80, slope_db = 24 }, bell { freq_hz = 3500, gain_db = 0.0, q = 1.0 } },
    deesser = { freq_hz = 6500, threshold_db = -30, ratio = 4 },
    compressor = { threshold_db = -22, ratio = 3, attack_ms = 5, release_ms = 100, knee_db = 6 },
    delay_send_db = -20,
  },
}

local order = { "drums", "bass", "music", "vocals" }

return function(o)
  o = o or {}
  local m = o.master or {}
  local s = session {
    title = o.title, artist = o.artist, reference = o.reference,
    sample_rate_hz = o.sample_rate_hz, tempo_bpm = o.tempo_bpm, sections = o.sections,
    target_lufs = m.target_lufs, ceiling_dbtp = m.ceiling_dbtp,
    trim = o.trim, fade_in = o.fade_in, fade_out = o.fade_out,
  }
  local stems = o.stems or error("band_4stem needs `stems = { drums = ..., bass = ..., music = ..., vocals = ... }`", 2)
  local master = s:bus "master"
  local vocal_out
  for _, name in ipairs(order) do
    local path = stems[name] or error("band_4stem needs a `" .. name .. "` stem", 2)
    local strip = merge(strips[name], o[name])
    local node = s:stem(name, path, { gain_db = strip.gain_db or 0 })
    local chain = { eq { bands = (o[name] and o[name].eq) or strip.eq } }
    if strip.deesser then chain[#chain + 1] = deesser(strip.deesser) end
    if strip.compressor then chain[#chain + 1] = compressor(strip.compressor) end
    if strip.pan then chain[#chain + 1] = pan { pan = strip.pan } end
    local out = node:chain(chain)
    out:to(master)
    if name == "vocals" then vocal_out = { node = out, send = strip.delay_send_db } end
  end
  if vocal_out and vocal_out.send then
    local returns = s:bus "vocal_delay"
    vocal_out.node:to(returns, { gain_db = vocal_out.send })
    returns:chain {
      delay { note = "1/8.", tempo_bpm = o.tempo_bpm or 120, feedback_pct = 30, mix_pct = 100,
              low_cut_hz = 300, high_cut_hz = 6000 },
    }:to(master)
  end
  master_chain(s, master, m)
  for _, param in ipairs(sorted_keys(o.automation)) do
    s:automate(param, o.automation[param])
  end
  for _, d in ipairs(o.deliver or { wav { bits = 24 }, wav { bits = 16, sample_rate_hz = 44100 } }) do
    s:deliver(d)
  end
  return s
end
