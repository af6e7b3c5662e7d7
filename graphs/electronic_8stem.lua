-- An electronic track of six to eight stems: drums, bass, perc, keys, pads, arp, lead, backing.
-- The bass is ducked by the drums through a side-chain compressor, pads and arp share a bus with
-- gentle glue, lead and backing feed a delay return, and the master chain finishes it.
--
--   local track = template "electronic_8stem"
--   return track {
--     title = "Night Drive", tempo_bpm = 124,
--     stems = { drums = "stems/drums.wav", bass = "stems/bass.wav", ... },
--     bass = { duck_db = -6 },
--     master = { target_lufs = -9, ceiling_dbtp = -1 },
--   }
--
-- Stems drums, bass, keys and lead are required; perc, pads, arp and backing are optional.
-- Per stem: `gain_db`, `eq` (bands), `pan`; the bass takes `duck_db` (how deep the side-chain
-- ducks, as the compressor's threshold) and `duck_release_ms`.

local master_chain = template "master_chain"

local required = { "drums", "bass", "keys", "lead" }
local all = { "drums", "bass", "perc", "keys", "pads", "arp", "lead", "backing" }

return function(o)
  o = o or {}
  local m = o.master or {}
  local s = session {
    title = o.title, artist = o.artist, reference = o.reference,
    sample_rate_hz = o.sample_rate_hz, tempo_bpm = o.tempo_bpm, sections = o.sections,
    target_lufs = m.target_lufs, ceiling_dbtp = m.ceiling_dbtp,
    trim = o.trim, fade_in = o.fade_in, fade_out = o.fade_out,
  }
  local stems = o.stems or error("electronic_8stem needs `stems = { drums = ..., bass = ..., ... }`", 2)
  for _, name in ipairs(required) do
    if not stems[name] then error("electronic_8stem needs a `" .. name .. "` stem", 2) end
  end
  local tempo = o.tempo_bpm or 124
  local master = s:bus "master"
  local synths = s:bus "synths"
  local returns = s:bus "delay_return"
  local nodes = {}
  for _, name in ipairs(all) do
    if stems[name] then
      local strip = o[name] or {}
      nodes[name] = s:stem(name, stems[name], { gain_db = strip.gain_db or 0 })
    end
  end
  -- Drums: punch, and they drive the bass's side-chain.
  nodes.drums:chain {
    eq { bands = (o.drums and o.drums.eq) or { high_pass { freq_hz = 25 }, bell { freq_hz = 60, gain_db = 1.0, q = 1.2 } } },
    compressor { threshold_db = -16, ratio = 3, attack_ms = 15, release_ms = 90, knee_db = 4 },
  }:to(master)
  -- Bass: ducked by the drums.
  local b = o.bass or {}
  local duck = nodes.bass:chain {
    eq { bands = b.eq or { high_pass { freq_hz = 28, slope_db = 24 } } },
    compressor { id = "bass.duck", threshold_db = b.duck_db or -24, ratio = 6, attack_ms = 2,
                 release_ms = b.duck_release_ms or 120, knee_db = 3 },
  }
  nodes.drums:key(duck)
  duck:to(master)
  -- Percussion straight in, panned.
  if nodes.perc then nodes.perc:chain { pan { pan = (o.perc and o.perc.pan) or 0.2 } }:to(master) end
  -- Keys, pads and arp share a glued synth bus.
  for _, name in ipairs { "keys", "pads", "arp" } do
    if nodes[name] then
      local strip = o[name] or {}
      nodes[name]:chain { eq { bands = strip.eq or { high_pass { freq_hz = 120 } } } }:to(synths)
    end
  end
  synths:chain { compressor { threshold_db = -22, ratio = 2, attack_ms = 30, release_ms = 200, knee_db = 6 } }:to(master)
  -- Lead and backing vocals, with a delay return.
  local lead_out = nodes.lead:chain {
    eq { bands = (o.lead and o.lead.eq) or { high_pass { freq_hz = 150 }, bell { freq_hz = 3000, gain_db = 1.0, q = 1.0 } } },
    deesser { freq_hz = 7000, threshold_db = -30, ratio = 4 },
  }
  lead_out:to(master)
  lead_out:to(returns, { gain_db = (o.lead and o.lead.delay_send_db) or -18 })
  if nodes.backing then
    local bk = nodes.backing:chain { pan { pan = -0.3 } }
    bk:to(master)
    bk:to(returns, { gain_db = -22 })
  end
  returns:chain {
    delay { note = "1/4.", tempo_bpm = tempo, feedback_pct = 35, mix_pct = 100, low_cut_hz = 400, high_cut_hz = 5000 },
  }:to(master)
  master_chain(s, master, merge({ glue = { threshold_db = -16, ratio = 2.5 } }, m))
  for _, param in ipairs(sorted_keys(o.automation)) do
    s:automate(param, o.automation[param])
  end
  for _, d in ipairs(o.deliver or { wav { bits = 24 }, wav { bits = 16, sample_rate_hz = 44100 } }) do
    s:deliver(d)
  end
  return s
end
