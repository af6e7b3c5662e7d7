-- The recipe API, written in Lua on top of three functions the engine provides.
-- It builds plain tables (nodes, connections, automation, deliverables) that the engine reads
-- back when the recipe returns its session. Loaded as chunk "=stemgraph" before every recipe.

local origin = __stemgraph_origin      -- origin() -> { file, line, via } of the caller
local kinds = __stemgraph_kinds        -- the processor kinds the engine knows, in order
local parse_time = __stemgraph_parse_time  -- "m:ss.mmm" -> seconds, or nil, message
__stemgraph_origin, __stemgraph_kinds, __stemgraph_parse_time = nil, nil, nil

local function fail(msg) error(msg, 3) end

local function check_table(value, what)
  if value ~= nil and type(value) ~= "table" then
    error(what .. " must be a table, not a " .. type(value), 3)
  end
  return value or {}
end

local function check_string(value, what)
  if type(value) ~= "string" or value == "" then
    error(what .. " must be a non-empty string, not " .. (value == nil and "nil" or "a " .. type(value)), 3)
  end
  return value
end

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

-- A processor description: what `eq { ... }` returns before it is placed in a graph.
local Processor = {}
Processor.__index = Processor
Processor.__name = "processor"

for _, kind in ipairs(kinds) do
  _G[kind] = function(options)
    options = check_table(options, kind .. " { ... }")
    return setmetatable({ kind = kind, options = copy(options), origin = origin() }, Processor)
  end
end

-- EQ band shortcuts: bell { freq_hz = 3500, gain_db = -1.5, q = 2 } is
-- { type = "bell", freq_hz = 3500, gain_db = -1.5, q = 2 }.
for _, band in ipairs { "bell", "low_shelf", "high_shelf", "high_pass", "low_pass", "notch", "band_pass", "tilt" } do
  _G[band] = function(options)
    local b = copy(check_table(options, band .. " { ... }"))
    b.type = band
    return b
  end
end

local Session = {}
Session.__index = Session
Session.__name = "session"

local Node = {}
Node.__index = Node
Node.__name = "node"

local function is_node(v) return getmetatable(v) == Node end

local function new_node(s, fields)
  local n = setmetatable(fields, Node)
  n.session = s
  s.ids[n.id] = true
  s.nodes[#s.nodes + 1] = n
  return n
end

--- Deep-merges `over` into a copy of `base` (lists and non-table values are replaced whole).
function merge(base, over)
  if over == nil then return base end
  if type(base) ~= "table" or type(over) ~= "table" or #over > 0 or getmetatable(over) then return over end
  local out = {}
  for k, v in pairs(base) do out[k] = v end
  for k, v in pairs(over) do out[k] = merge(base[k], v) end
  return out
end

--- The keys of a table in sorted order (for deterministic iteration over named options).
function sorted_keys(t)
  local keys = {}
  for k in pairs(t or {}) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  return keys
end

-- The metadata keys of a session (see docs/lua-api.md, "Metadata").
local METADATA_KEYS = { "album", "album_artist", "track", "track_total", "isrc", "upc", "composer",
                        "songwriter", "genre", "date", "copyright", "label", "comment", "originator",
                        "origination" }

--- Starts a session: the song, its stems, its graph and its deliverables.
function session(options)
  options = check_table(options, "session { ... }")
  local metadata = {}
  for _, k in ipairs(METADATA_KEYS) do metadata[k] = options[k] end
  local s = setmetatable({
    title = options.title or "untitled",
    artist = options.artist,
    sample_rate_hz = options.sample_rate_hz,
    reference = options.reference,
    tempo_bpm = options.tempo_bpm,
    beats_per_bar = options.beats_per_bar or 4,
    sections = options.sections or {},
    target_lufs = options.target_lufs,
    ceiling_dbtp = options.ceiling_dbtp,
    target_tolerance_lu = options.target_tolerance_lu,
    tail = options.tail,
    trim = options.trim,
    fade_in = options.fade_in,
    fade_out = options.fade_out,
    metadata = metadata,
    nodes = {}, edges = {}, automation = {}, deliverables = {}, ids = {}, sets = {},
    origin = origin(),
  }, Session)
  -- Song edits, with their times in seconds.
  if s.trim ~= nil then
    local t = check_table(s.trim, "trim { start = ..., finish = ... }")
    s.trim = { start = t.start and s:seconds(t.start, 2), finish = t.finish and s:seconds(t.finish, 2) }
  end
  for _, key in ipairs { "fade_in", "fade_out" } do
    local f = s[key]
    if type(f) == "number" or type(f) == "string" then f = { length = f } end
    if f ~= nil then
      f = check_table(f, key)
      s[key] = { length = s:seconds(f.length or 0, 2), shape = f.shape or "sine" }
    end
  end
  return s
end

--- Seconds of song time for a time as recipes write it: seconds, "m:ss.mmm", a section name,
--- or { bar = 17, beat = 1 } at the session's tempo.
function Session:seconds(t, level)
  level = (level or 1) + 1
  if type(t) == "number" then return t end
  if type(t) == "string" then
    if self.sections[t] ~= nil then return self:seconds(self.sections[t], level) end
    local secs, err = parse_time(t)
    if secs then return secs end
    local names = sorted_keys(self.sections)
    error(err .. (#names > 0 and (", or a section (" .. table.concat(names, ", ") .. ")") or ""), level)
  end
  if type(t) == "table" and t.bar then
    if not self.tempo_bpm then error("bars and beats need the session's tempo_bpm", level) end
    local beat = 60 / self.tempo_bpm
    return ((t.bar - 1) * self.beats_per_bar + (t.beat or 1) - 1) * beat
  end
  error("a time is seconds, \"m:ss.mmm\", a section name or { bar = n, beat = n }, not " .. type(t), level)
end

--- A stem source: a file with its fader (`gain_db`, `invert`) and its place on the timeline
--- (`offset_samples`, fractional, positive = later; not automatable).
function Session:stem(name, path, options)
  check_string(name, "a stem's name")
  check_string(path, "the file of stem `" .. name .. "`")
  options = copy(check_table(options, "the options of stem `" .. name .. "`"))
  local channels = options.channels or 2
  local offset = options.offset_samples
  options.channels, options.offset_samples = nil, nil
  return new_node(self, { id = name, type = "stem", path = path, channels = channels,
                          offset_samples = offset, options = options, origin = origin() })
end

--- A bus: sums everything connected to it.
function Session:bus(id, options)
  check_string(id, "a bus id")
  options = check_table(options, "the options of bus `" .. id .. "`")
  return new_node(self, { id = id, type = "bus", channels = options.channels or 2, origin = origin() })
end

--- An output: what deliverables are made from.
function Session:output(id, options)
  check_string(id or "main", "an output id")
  options = check_table(options, "the options of output `" .. (id or "main") .. "`")
  return new_node(self, { id = id or "main", type = "output", channels = options.channels or 2,
                          origin = origin() })
end

--- A processor node on its own (normally `node:chain { ... }` is easier).
function Session:processor(desc, id)
  if getmetatable(desc) ~= Processor then fail("expected a processor such as gain { ... }") end
  local options = copy(desc.options)
  local bypass = options.bypass or false
  options.bypass, options.id = nil, nil
  return new_node(self, { id = id, type = "processor", kind = desc.kind, options = options,
                          bypass = bypass, origin = desc.origin })
end

local Deliverable = {}
Deliverable.__name = "deliverable"

--- A WAV deliverable description: wav { bits = 24, sample_rate_hz = 44100, dither = "tpdf" }.
function wav(options)
  local d = copy(check_table(options, "wav { ... }"))
  d.format = "wav"
  d.origin = origin()
  return setmetatable(d, Deliverable)
end

--- A FLAC deliverable description: flac { bits = 24, tags = { GENRE = "Rock" } }. FLAC files
--- carry TITLE and ARTIST (and, in an album, ALBUM, TRACKNUMBER, TRACKTOTAL and ISRC) tags.
function flac(options)
  local d = copy(check_table(options, "flac { ... }"))
  d.format = "flac"
  d.origin = origin()
  return setmetatable(d, Deliverable)
end

--- A deliverable: a file made from an output (a table, or wav { ... }).
function Session:deliver(options)
  local d = copy(check_table(options, "deliver { ... }"))
  d.origin = d.origin or origin()
  self.deliverables[#self.deliverables + 1] = d
  return self
end

--- Overrides a parameter or session field once the recipe is built, as `--set KEY=VALUE` does:
--- `s:set("vocals.gain_db", 1.5)`, `s:set("master.send.bass.gain_db", 2)`, `s:set("target_lufs", -12)`.
--- For override files that `require` a recipe and change it (`stemgraph match --write`).
function Session:set(key, value)
  check_string(key, "the key of `set`")
  if type(value) ~= "number" then fail("`set` needs a number for `" .. key .. "`") end
  self.sets[#self.sets + 1] = { key = key, value = value, origin = origin() }
  return self
end

--- Places processors right after node `id`: what `id` fed now comes from the last of them.
--- Returns the last one. For override files (a match EQ after the mix bus).
function Session:insert(id, list)
  check_string(id, "the node id of `insert`")
  local node
  for _, n in ipairs(self.nodes) do
    if n.id == id then node = n end
  end
  if node == nil then fail("`insert`: the session has no node `" .. id .. "`") end
  local moved = {}
  for _, e in ipairs(self.edges) do
    if e.from == id and e.port == "in" then moved[#moved + 1] = e end
  end
  local last = node:chain(list)
  for _, e in ipairs(moved) do e.from = last.id end
  return last
end

--- Automation of one parameter: either a list of { time, value [, shape] } breakpoints, or a
--- function of time in seconds sampled at `rate_hz` (default 100) from `from` to `to`.
function Session:automate(param, points, range)
  check_string(param, "the parameter id of an automation")
  local o = origin()
  local out = {}
  if type(points) == "function" then
    range = check_table(range, "the range of a function automation { from = ..., to = ... }")
    if range.to == nil then error("a function automation needs { from = ..., to = ... }", 2) end
    local from, to = self:seconds(range.from or 0, 2), self:seconds(range.to, 2)
    local rate = range.rate_hz or 100
    if not (to > from) then error("a function automation needs `to` after `from`", 2) end
    local n = math.ceil((to - from) * rate)
    for i = 0, n do
      local t = math.min(from + i / rate, to)
      local v = points(t)
      if type(v) ~= "number" then
        error("the automation function returned " .. type(v) .. " at t = " .. t .. " s, not a number", 2)
      end
      out[#out + 1] = { t, v, "linear" }
    end
  else
    points = check_table(points, "automation points")
    for i, p in ipairs(points) do
      if type(p) ~= "table" then error("automation point " .. i .. " must be { time, value [, shape] }", 2) end
      out[#out + 1] = { self:seconds(p[1], 2), p[2], p[3] }
    end
  end
  self.automation[#self.automation + 1] = { param = param, points = out, origin = o }
  return self
end

local function unique_id(s, base)
  if not s.ids[base] then return base end
  local i = 2
  while s.ids[base .. "_" .. i] do i = i + 1 end
  return base .. "_" .. i
end

local function connect(from, to, options, port)
  options = check_table(options, "connection options")
  local s = from.session
  s.edges[#s.edges + 1] = { from = from.id, to = to.id, port = port or options.port or "in",
                            gain_db = options.gain_db or 0, origin = origin() }
end

--- Connects this node's output to `target` (a node); returns `target` so calls can follow.
function Node:to(target, options)
  if not is_node(target) then fail("`to` expects a node (a stem, bus, processor or output)") end
  connect(self, target, options)
  return target
end

--- Feeds this node's output to the side-chain `key` input of `target`.
function Node:key(target)
  if not is_node(target) then fail("`key` expects a processor node") end
  connect(self, target, {}, "key")
  return self
end

--- Places processors in series after this node; returns the last one.
function Node:chain(list)
  list = check_table(list, "chain { ... }")
  local s, prev = self.session, self
  local root = self.root or self.id
  for i, desc in ipairs(list) do
    if getmetatable(desc) ~= Processor then
      error("chain item " .. i .. " is not a processor (write e.g. gain { gain_db = -1 })", 2)
    end
    local id = desc.options.id or unique_id(s, root .. "." .. desc.kind)
    local options = copy(desc.options)
    local bypass = options.bypass or false
    options.bypass, options.id = nil, nil
    local node = new_node(s, { id = id, type = "processor", kind = desc.kind, options = options,
                               bypass = bypass, root = root, origin = desc.origin })
    s.edges[#s.edges + 1] = { from = prev.id, to = node.id, port = "in", gain_db = 0, origin = desc.origin }
    prev = node
  end
  return prev
end

local Album = {}
Album.__index = Album
Album.__name = "album"

--- An album: songs in order (each a recipe file or a stems folder plus overrides of a shared
--- template), the shared master chain, the loudness policy and the deliverables. The engine
--- reads it back when the album file returns it (see `stemgraph album`).
function album(options)
  options = copy(check_table(options, "album { ... }"))
  local songs = check_table(options.songs, "album { songs = { ... } }")
  if #songs == 0 then error("album { songs = { ... } } needs at least one song", 2) end
  for i, song in ipairs(songs) do
    if type(song) ~= "table" then
      error("song " .. i .. " must be a table such as { title = ..., stems = \"folder\" } or { recipe = \"song.lua\" }", 2)
    end
  end
  options.origin = origin()
  return setmetatable(options, Album)
end
