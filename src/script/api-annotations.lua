---@meta stemgraph
-- LuaLS annotations for stemgraph recipes. Generated from the engine's registry: do not edit.

---@class stemgraph.Origin
---@field file string
---@field line integer

---@class stemgraph.Processor
---@field kind string
---@field options table

---@class stemgraph.ProcessorOptions
---@field id? string node id (default `<stem or bus>.<kind>`)
---@field bypass? boolean pass the signal through, delayed by the processor's latency

---@class stemgraph.Node
---@field id string
local Node = {}

---Connects this node to `target`; returns `target`.
---@param target stemgraph.Node
---@param options? { gain_db?: number }
---@return stemgraph.Node
function Node:to(target, options) end

---Feeds this node to the side-chain `key` input of `target`; returns this node.
---@param target stemgraph.Node
---@return stemgraph.Node
function Node:key(target) end

---Places processors in series after this node; returns the last.
---@param processors stemgraph.Processor[]
---@return stemgraph.Node
function Node:chain(processors) end

---@alias stemgraph.Time number|string|{ bar: integer, beat?: number }
---@alias stemgraph.Shape "linear"|"step"|"linear_db"|"smooth"|"exp"

---@class stemgraph.Metadata
---@field album? string album title
---@field album_artist? string
---@field track? integer track number, from 1
---@field track_total? integer
---@field isrc? string ISRC, CC-XXX-YY-NNNNN (checked)
---@field upc? string UPC-A (12 digits) or EAN-13 (13 digits), check digit checked
---@field composer? string
---@field songwriter? string
---@field genre? string
---@field date? string
---@field copyright? string
---@field label? string
---@field comment? string
---@field originator? string BWF Originator (default "stemgraph")
---@field origination? string "YYYY-MM-DD[ HH:MM:SS]" (BWF origination; default SOURCE_DATE_EPOCH, else blank)

---@class stemgraph.SessionOptions: stemgraph.Metadata
---@field title? string
---@field artist? string
---@field sample_rate_hz? integer
---@field reference? string
---@field tempo_bpm? number
---@field beats_per_bar? integer
---@field sections? table<string, stemgraph.Time>
---@field target_lufs? number
---@field target_tolerance_lu? number
---@field ceiling_dbtp? number
---@field trim? { start?: stemgraph.Time, finish?: stemgraph.Time }
---@field fade_in? number|{ length: number, shape?: "linear"|"sine"|"exp"|"s_curve" }
---@field fade_out? number|{ length: number, shape?: "linear"|"sine"|"exp"|"s_curve" }
---@field tail? { threshold_db?: number, hold_s?: number, max_s?: number }

---@class stemgraph.Deliverable
---@field file? string
---@field format? "wav"|"flac"|"mp3"|"opus"
---@field preset? "spotify"|"spotify_loud"|"apple_music"|"youtube"|"tidal"|"amazon"|"deezer"|"soundcloud"|"cd"
---@field bitrate_kbps? integer
---@field codec_safe? "limit"|"gain"|"off"|boolean
---@field max_encodes? integer
---@field bits? 16|24|32
---@field sample_rate_hz? integer
---@field dither? "none"|"tpdf"
---@field output? string
---@field ceiling_dbtp? number
---@field seed? integer
---@field silence? { lead?: number, tail?: number }
---@field tags? table<string, string|number>
---@field bext? boolean|{ description?: string, originator?: string, originator_reference?: string } WAV: the BWF bext chunk (on by default)
---@field ixml? boolean WAV: an iXML chunk

---@class stemgraph.Session
local Session = {}

---@param name string
---@param path string
---@param options? { gain_db?: number, invert?: number, channels?: 1|2, offset_samples?: number }
---@return stemgraph.Node
function Session:stem(name, path, options) end

---@param id string
---@param options? { channels?: 1|2 }
---@return stemgraph.Node
function Session:bus(id, options) end

---@param id? string
---@return stemgraph.Node
function Session:output(id) end

---@param desc stemgraph.Processor
---@param id? string
---@return stemgraph.Node
function Session:processor(desc, id) end

---@param deliverable stemgraph.Deliverable
---@return stemgraph.Session
function Session:deliver(deliverable) end

---@param param string
---@param points { [1]: stemgraph.Time, [2]: number, [3]: stemgraph.Shape? }[]|fun(t: number): number
---@param range? { from?: stemgraph.Time, to: stemgraph.Time, rate_hz?: number }
---@return stemgraph.Session
function Session:automate(param, points, range) end

--- Overrides a parameter or session field once the recipe is built, as `--set KEY=VALUE` does.
---@param key string
---@param value number
---@return stemgraph.Session
function Session:set(key, value) end

--- Places processors right after node `id`: what `id` fed now comes from the last of them.
---@param id string
---@param list stemgraph.Processor[]
---@return stemgraph.Node
function Session:insert(id, list) end

---@param time stemgraph.Time
---@return number
function Session:seconds(time) end

---@param options? stemgraph.SessionOptions
---@return stemgraph.Session
function session(options) end

---@param options stemgraph.Deliverable
---@return stemgraph.Deliverable
function wav(options) end

---@param options stemgraph.Deliverable
---@return stemgraph.Deliverable
function flac(options) end

---@class stemgraph.AlbumPolicy
---@field mode? "album_gain"|"per_track"
---@field key? "loudest"|"whole"
---@field target_lufs? number
---@field ceiling_dbtp? number

---@class stemgraph.Song: stemgraph.Metadata
---@field title? string
---@field recipe? string a recipe file for this song (instead of a template and stems)
---@field template? string
---@field stems? string|table<string, string> a stems folder, or the template's stem table
---@field gap_s? number
---@field master? table
---@field deliver? stemgraph.Deliverable[]

---@class stemgraph.AlbumOptions: stemgraph.Metadata
---@field title? string
---@field artist? string
---@field template? string
---@field master? table
---@field policy? stemgraph.AlbumPolicy
---@field deliver? stemgraph.Deliverable[]
---@field cd? boolean|{ file?: string, cue?: string, ddp?: boolean|string|{ folder?: string, master_id?: string, pregap_s?: number } }
---@field gap_s? number
---@field songs stemgraph.Song[]

---@class stemgraph.Album

---@param options stemgraph.AlbumOptions
---@return stemgraph.Album
function album(options) end

---@param name string
---@return fun(options: table): stemgraph.Session
function template(name) end

---@generic T
---@param base T
---@param over? table
---@return T
function merge(base, over) end

---@param t table
---@return string[]
function sorted_keys(t) end
