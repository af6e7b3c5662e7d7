-- The recipe API, written in Lua on top of three functions the engine provides.
-- It builds plain tables (nodes, connections, automation, deliverables) that the engine reads
-- back when the recipe returns its session. Loaded as chunk "=stemgraph" before every recipe.

local origin = __stemgraph_origin      -- origin() -> { file = ..., line = ... } of the caller
local kinds = __stemgraph_kinds        -- the processor kinds the engine knows, in order
__stemgraph_origin, __stemgraph_kinds = nil, nil

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

--- Starts a session: the song, its stems, its graph and its deliverables.
function session(options)
  options = check_table(options, "session { ... }")
  local s = setmetatable({
    title = options.title or "untitled",
    artist = options.artist,
    sample_rate_hz = options.sample_rate_hz,
    reference = options.reference,
    nodes = {}, edges = {}, automation = {}, deliverables = {}, ids = {},
    origin = origin(),
  }, Session)
  return s
end

--- A stem source: a file with its fader (`gain_db`, `invert`).
function Session:stem(name, path, options)
  check_string(name, "a stem's name")
  check_string(path, "the file of stem `" .. name .. "`")
  options = copy(check_table(options, "the options of stem `" .. name .. "`"))
  local channels = options.channels or 2
  options.channels = nil
  return new_node(self, { id = name, type = "stem", path = path, channels = channels,
                          options = options, origin = origin() })
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

--- A deliverable: a file made from an output.
function Session:deliver(options)
  options = copy(check_table(options, "deliver { ... }"))
  options.origin = origin()
  self.deliverables[#self.deliverables + 1] = options
  return self
end

--- Automation: `points` is a list of { time, value [, shape] }.
function Session:automate(param, points)
  check_string(param, "the parameter id of an automation")
  self.automation[#self.automation + 1] = { param = param, points = check_table(points, "automation points"),
                                            origin = origin() }
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
