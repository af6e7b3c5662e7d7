-- A stereo master chain: EQ → glue compressor → stereo width → true-peak limiter → output.
--
--   local master_chain = template "master_chain"
--   master_chain(s, master_bus, { eq = { ... }, glue = { threshold_db = -18 }, limiter = { ... } })
--
-- Each stage takes overrides of its defaults (merged), or `false` to leave it out. `eq` is a
-- list of bands and replaces the default list whole. Node ids: master.eq, master.glue,
-- master.width, master.limiter; the output is "main". Returns the output node.

local defaults = {
  eq = {
    high_pass { freq_hz = 25, slope_db = 24 },
    low_shelf { freq_hz = 100, gain_db = 0.0, q = 0.7 },
    high_shelf { freq_hz = 12000, gain_db = 0.5, q = 0.7 },
  },
  glue = { threshold_db = -20, ratio = 2, knee_db = 6, attack_ms = 30, release_ms = 250, makeup_db = 0 },
  width = { width_pct = 100, mono_below_hz = 100 },
  limiter = { ceiling_dbtp = -1.0, release_ms = 60, lookahead_ms = 1.5 },
}

local function with_id(options, id)
  local o = merge({}, options)
  o.id = id
  return o
end

return function(s, input, o)
  o = o or {}
  local chain = {}
  if o.eq ~= false then
    chain[#chain + 1] = eq { id = "master.eq", bands = o.eq or defaults.eq }
  end
  if o.glue ~= false then
    chain[#chain + 1] = compressor(with_id(merge(defaults.glue, o.glue), "master.glue"))
  end
  if o.width ~= false then
    chain[#chain + 1] = width(with_id(merge(defaults.width, o.width), "master.width"))
  end
  if o.limiter ~= false then
    local l = merge(defaults.limiter, o.limiter)
    if s.ceiling_dbtp then l.ceiling_dbtp = s.ceiling_dbtp end
    chain[#chain + 1] = limiter(with_id(l, "master.limiter"))
  end
  return input:chain(chain):to(s:output "main")
end
