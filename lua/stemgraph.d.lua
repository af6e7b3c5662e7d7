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

---@class stemgraph.gainOptions: stemgraph.ProcessorOptions
---@field gain_db? number level change (-120 … 36 dB)
---@field invert? number polarity: 0 normal, 1 inverted (glides through silence) (0 … 1)

--- Level change in dB and polarity inversion. Neutral settings are bit-transparent.
---@param options? stemgraph.gainOptions
---@return stemgraph.Processor
function gain(options) end

---@class stemgraph.panOptions: stemgraph.ProcessorOptions
---@field pan? number position: −1 left, 0 centre, +1 right (-1 … 1)

--- Mono input: constant-power pan (−3 dB centre) to stereo. Stereo input: balance (the far side attenuated, centre transparent).
---@param options? stemgraph.panOptions
---@return stemgraph.Processor
function pan(options) end

---@class stemgraph.eqOptions: stemgraph.ProcessorOptions
---@field bands? table[]

--- Parametric EQ with any number of bands, given as a list `bands = { {type = "bell", freq_hz = 1000, gain_db = -3, q = 1.4}, … }`. Types: bell, low_shelf, high_shelf, high_pass and low_pass (Butterworth, `slope_db` = 12, 24 or 48), notch, band_pass (0 dB peak) and tilt (first-order, +gain/2 above the centre, −gain/2 below). Each band may set `mode` = "stereo" (default), "mid" or "side" (stereo input only). Parameters of band n: `n.freq_hz`, `n.gain_db` (types with a gain), `n.q` (not for tilt nor for 24/48 dB/oct passes). Bilinear-transformed analog responses (direct-form-I biquads, trapezoidal SVFs while parameters move), exact at the set frequency; bands at 0 dB are bit-transparent. Latency 0.
---@param options? stemgraph.eqOptions
---@return stemgraph.Processor
function eq(options) end

---@class stemgraph.delayOptions: stemgraph.ProcessorOptions
---@field time_ms? number delay time (changes glide like tape, speed within ±50 %) (1 … 4000 ms)
---@field feedback_pct? number level of each repeat relative to the one before (0 … 95 %)
---@field mix_pct? number wet share of the output: 100 = repeats only (a return), 0 = dry only (0 … 100 %)
---@field low_cut_hz? number 12 dB/oct high-pass in the feedback loop (10 … 24000 Hz)
---@field high_cut_hz? number 12 dB/oct low-pass in the feedback loop (10 … 24000 Hz)
---@field ping_pong? boolean

--- Feedback delay for a delay return: `time_ms` (1–4000, or `note` = "1/8", "1/4." dotted, "1/8t" triplet with `tempo_bpm`), `feedback_pct`, `mix_pct` (100: wet only, for a return on a bus), optional `low_cut_hz` / `high_cut_hz` filters in the feedback loop (every repeat passes them once more), optional `ping_pong = true` on a stereo input (the input's mid starts on the left, repeats alternate sides). Time changes glide like tape (speed within ±50 %, cubic interpolation). Latency 0; the tail covers the repeats down to −120 dB (at most 30 s).
---@param options? stemgraph.delayOptions
---@return stemgraph.Processor
function delay(options) end

---@class stemgraph.compressorOptions: stemgraph.ProcessorOptions
---@field threshold_db? number level above which the gain is reduced (-60 … 0 dB)
---@field ratio? number input dB over threshold per output dB over threshold (1 … 20:1)
---@field knee_db? number width of the soft knee centred on the threshold (0: hard knee) (0 … 24 dB)
---@field attack_ms? number time for a growing reduction to cover 63 % of its change (0.05 … 500 ms)
---@field release_ms? number time for a shrinking reduction to cover 63 % of its change (5 … 5000 ms)
---@field makeup_db? number gain added after the reduction (wet signal only) (-12 … 24 dB)
---@field mix_pct? number wet share for parallel compression (0: dry, bit-exact) (0 … 100 %)
---@field link_pct? number stereo link: 100 one gain from the louder channel, 0 independent channels (0 … 100 %)
---@field rms_window_ms? number time constant of the RMS detector's mean of squares (1 … 1000 ms)
---@field sidechain_hpf_hz? number 12 dB/octave high-pass on the detector only (absent or 0: off) (20 … 500 Hz)
---@field detector? string

--- Feed-forward compressor (threshold, ratio, soft knee, attack/release on the gain in dB, makeup, parallel mix, stereo link). `detector = "peak"` (default) or `"rms"` (with `rms_window_ms`); optional `sidechain_hpf_hz` high-pass on the detector; an external side-chain on the `key` input drives the detector instead of the input. Publishes `gain_reduction_db`.
---@param options? stemgraph.compressorOptions
---@return stemgraph.Processor
function compressor(options) end

---@class stemgraph.deesserOptions: stemgraph.ProcessorOptions
---@field freq_hz? number centre (band) or corner (high) of the band treated (2000 … 16000 Hz)
---@field threshold_db? number band level above which the band is reduced (-60 … 0 dB)
---@field ratio? number ratio of the band's compression (1 … 20:1)
---@field range_db? number largest reduction of the band (0 … 24 dB)
---@field attack_ms? number time for a growing reduction to cover 63 % of its change (0.05 … 50 ms)
---@field release_ms? number time for a shrinking reduction to cover 63 % of its change (5 … 500 ms)
---@field link_pct? number stereo link of the detector (0 … 100 %)
---@field q? number quality of the band-pass (band mode) (0.3 … 6 Q)
---@field mode? string

--- De-esser: compresses one band (`mode = "band"`, band-pass at `freq_hz` with `q`, or `"high"`, high-pass above `freq_hz`) detected on that band, at most `range_db`; the rest of the signal is untouched and no reduction is bit-transparent. Publishes `gain_reduction_db`.
---@param options? stemgraph.deesserOptions
---@return stemgraph.Processor
function deesser(options) end

---@class stemgraph.multibandOptions: stemgraph.ProcessorOptions
---@field knee_db? number width of the soft knee of every band (0 … 24 dB)
---@field link_pct? number stereo link of every band (0 … 100 %)
---@field crossovers_hz? table[]

--- Multiband compressor: `crossovers_hz` (1–3 frequencies, default {120, 2000}) split the signal on Linkwitz–Riley 24 dB/octave crossovers that sum flat; each band `n` has `n.threshold_db`, `n.ratio`, `n.attack_ms`, `n.release_ms`, `n.makeup_db` (or a `bands` list of tables); `knee_db` and `link_pct` are shared. Publishes `gain_reduction_db` and `n.gain_reduction_db`.
---@param options? stemgraph.multibandOptions
---@return stemgraph.Processor
function multiband(options) end

---@class stemgraph.widthOptions: stemgraph.ProcessorOptions
---@field width_pct? number side level: 0 mono, 100 unchanged, 200 twice as wide (0 … 200 %)
---@field mono_below_hz? number the side is removed below this frequency (absent or 0: off) (20 … 500 Hz)

--- Stereo width on mid/side: `width_pct` 0 (mono) … 100 (unchanged, bit-transparent) … 200; optional `mono_below_hz` makes the low end mono through a Linkwitz–Riley crossover on the side (48 dB/octave, mid all-passed to stay in phase). Stereo input only. Publishes `correlation` (−1…1, over ~300 ms).
---@param options? stemgraph.widthOptions
---@return stemgraph.Processor
function width(options) end

---@class stemgraph.limiterOptions: stemgraph.ProcessorOptions
---@field ceiling_dbtp? number true-peak ceiling of the output, dBTP (-12 … 0 dB)
---@field release_ms? number release time (with auto_release: the sustained release; fast = a tenth) (1 … 1000 ms)
---@field lookahead_ms? number lookahead = attack time; sets the latency (1 … 5 ms)
---@field link_pct? number stereo link: 100 = one gain for both channels, 0 = independent (0 … 100 %)
---@field input_gain_db? number drive into the limiter (-12 … 24 dB)
---@field auto_release? boolean
---@field oversampling? number

--- True-peak lookahead limiter: the output never exceeds `ceiling_dbtp`, measured as true peak. Oversampled detector (`oversampling` = 4 or 8, default 8; 1 detects sample peaks only, like most plugin limiters and ffmpeg's alimiter, and then guarantees no more than the sample peak), sliding-window hold, two-box attack equal to the lookahead, program-dependent release (`auto_release`, default true), channel link, and a safety stage that checks the output's (true) peak. `input_gain_db` drives it. Latency: the lookahead plus about 1 ms, compensated.
---@param options? stemgraph.limiterOptions
---@return stemgraph.Processor
function limiter(options) end

---@class stemgraph.ditherOptions: stemgraph.ProcessorOptions
---@field bits? number target word length (8 … 24)
---@field seed? number noise generator seed (whole number): same seed, same bits (0 … 4294967295)
---@field noise_shaping? string

--- TPDF dither and quantisation to `bits` (8–24): the output lies exactly on the target grid, so the file writer's rounding is exact. `noise_shaping` = "none", "lipshitz", "wannamaker3" or "fweighted9" (valid within ±5 % of 44.1/48 kHz; flat TPDF elsewhere, with a warning). `seed` makes renders reproducible.
---@param options? stemgraph.ditherOptions
---@return stemgraph.Processor
function dither(options) end

---@class stemgraph.saturationOptions: stemgraph.ProcessorOptions
---@field drive_db? number gain into the curve (0 … 36 dB)
---@field mix_pct? number wet share; the dry signal is latency-aligned (0 … 100 %)
---@field output_db? number level after the mix (-24 … 12 dB)
---@field character? string

--- Saturation, oversampled 8×: `character` = "soft" (tanh soft clip), "tape" (wider knee, gentle top-end softening) or "tube" (asymmetric, even harmonics, DC blocked). `drive_db` into the curve, `mix_pct` with the latency-aligned dry signal, `output_db` after. Latency compensated.
---@param options? stemgraph.saturationOptions
---@return stemgraph.Processor
function saturation(options) end

---@class stemgraph.pluginOptions: stemgraph.ProcessorOptions
---@field active? number 1: the plugin is heard; 0: the input, delayed by the plugin's latency (glides: a click-free bypass) (0 … 1)
---@field clap? string
---@field lv2? string
---@field params? table
---@field path? string
---@field state? string

--- A third-party LV2 or CLAP plugin: `plugin { lv2 = "http://…", params = { symbol = value }, state = "file.ttl" }` or `plugin { clap = "org.example.id", path = "x.clap", params = { … } }` (`path` relative to the recipe; without it the installed CLAP bundles are searched). The plugin's control ports (CLAP: its parameters, by name in snake_case) are its parameters (`<node>.<symbol>`, in the plugin's declared ranges; `stemgraph plugins` lists them), after `active`. Its reported latency is compensated; at load an impulse measures it and the report warns when the two differ. LV2 control values change once per block, or every 16 frames while they glide or are automated; CLAP parameters change at the exact sample (parameter events with a sample offset). `state` restores a state saved with `stemgraph plugin save-state` (path relative to the recipe; its hash is in the report). A side-chain `key` input feeds the plugin's side-chain ports.
---@param options? stemgraph.pluginOptions
---@return stemgraph.Processor
function plugin(options) end
