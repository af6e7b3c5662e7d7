//! The container and codec of an output file: what the writers (`wav`, `flac`, `lossy`) make
//! and what recipes name in `format = "..."`.

/// The container and codec of a deliverable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FileFormat {
    /// RIFF WAV (16/24-bit integer or 32-bit float).
    #[default]
    Wav,
    /// FLAC (16 or 24 bits), with a Vorbis comment block of tags.
    Flac,
    /// MP3 (LAME, constant bit rate), with an ID3v2 tag (feature `lossy`).
    Mp3,
    /// Ogg Opus (48 kHz), with OpusTags (feature `lossy`).
    Opus,
}

impl FileFormat {
    /// Whether the codec is lossy (encoded from float PCM through the codec-safe solve).
    pub fn is_lossy(self) -> bool {
        matches!(self, FileFormat::Mp3 | FileFormat::Opus)
    }

    /// The name recipes use (`format = "..."`).
    pub fn name(self) -> &'static str {
        match self {
            FileFormat::Wav => "wav",
            FileFormat::Flac => "flac",
            FileFormat::Mp3 => "mp3",
            FileFormat::Opus => "opus",
        }
    }
}
