-- Streaming deliverables with platform presets: the demo song's mix mastered with the stereo
-- master chain template to -14 LUFS under -1 dBTP, then delivered for each platform. The lossy
-- files are decoded after encoding and re-encoded until their decoded true peak holds the
-- ceiling (the codec-safe solve); report.md lists what it did and what each platform's loudness
-- normalization will do to this master (docs/delivery.md).
-- Input: the demo song's reference mix (`make demo` writes it to demo/stems/mix.wav).

local master_chain = template "master_chain"

local s = session { title = "Streaming", artist = "stemgraph", target_lufs = -14, ceiling_dbtp = -1 }
local mix = s:stem("mix", "../demo/stems/mix.wav")
master_chain(s, mix, {
  glue = { threshold_db = -18, ratio = 1.8 },
})

local tags = { ALBUM = "Demo", TRACKNUMBER = "1", ISRC = "ZZSTG2600001" }
s:deliver { file = "streaming/{title} spotify.opus", preset = "spotify", tags = tags }
s:deliver { file = "streaming/{title} youtube.opus", preset = "youtube", tags = tags }
s:deliver { file = "streaming/{title} deezer.mp3", preset = "deezer", tags = tags }
s:deliver { file = "streaming/{title} soundcloud.mp3", preset = "soundcloud", tags = tags }
s:deliver { file = "upload/{title} apple_music.wav", preset = "apple_music" }
s:deliver { file = "upload/{title} tidal.flac", preset = "tidal", tags = tags }
s:deliver { file = "cd/{title} cd.wav", preset = "cd" }
return s
