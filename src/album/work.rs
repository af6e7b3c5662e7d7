//! The album's work folder (`<out>/.stemgraph-album/`) and the records kept in it.
//!
//! Every job leaves one small JSON record, written atomically, so jobs can run in any order, in
//! one process or on many machines sharing the output folder:
//!
//! | file | written by | holds |
//! |---|---|---|
//! | `measure/NN.json` | the measure job of track NN | [`MeasureRecord`]: the pre-limiter loudness, the song's own drive |
//! | `spill/NN.wav` | the measure job (again by a render job if missing) | the pre-limiter master, 32-bit float |
//! | `gain.json` | the gain step between the phases | [`GainRecord`]: every song's limiter drive |
//! | `render/NN.json` | the render job of track NN | [`RenderRecord`]: the files and their measurements |
//! | `cd/NN.wav` | the render job, when the album has a CD image | the track at 16 bits, 44.1 kHz |
//! | `digests.json` | single runs and `--finish` | cached SHA-256 digests of the inputs |
//! | `manifest.json` | the report step | [`Manifest`]: every input and file with its digest, the keys, the album gain and how it moved ([`GainMove`]) |
//!
//! The records are also the manifest of incremental renders: a job whose record carries the
//! current key has nothing to do. The spills are a cache: deleting the folder only costs time.

use super::spec::Policy;
use super::AlbumError;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Levels that may be −∞ (silence): JSON has no infinity, so they are written as `null`.
pub mod level_db {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes a finite level as a number, −∞ (or NaN) as `null`.
    pub fn serialize<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
        if x.is_finite() {
            s.serialize_f64(*x)
        } else {
            s.serialize_none()
        }
    }

    /// Reads `null` as −∞.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NEG_INFINITY))
    }
}

/// The work folder's name inside the output folder.
pub const WORK_DIR: &str = ".stemgraph-album";

/// Paths of the work folder.
#[derive(Debug, Clone)]
pub struct WorkDir {
    root: PathBuf,
}

impl WorkDir {
    /// The work folder of the output folder `out`.
    pub fn new(out: &Path) -> WorkDir {
        WorkDir {
            root: out.join(WORK_DIR),
        }
    }
    /// The folder itself.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// The measure record of `track`.
    pub fn measure(&self, track: usize) -> PathBuf {
        self.root.join(format!("measure/{track:02}.json"))
    }
    /// The pre-limiter spill of `track`.
    pub fn spill(&self, track: usize) -> PathBuf {
        self.root.join(format!("spill/{track:02}.wav"))
    }
    /// The gain record.
    pub fn gain(&self) -> PathBuf {
        self.root.join("gain.json")
    }
    /// The render record of `track`.
    pub fn render(&self, track: usize) -> PathBuf {
        self.root.join(format!("render/{track:02}.json"))
    }
    /// The CD track of `track`, relative to the output folder (it is a deliverable).
    pub fn cd_track_relative(track: usize) -> String {
        format!("{WORK_DIR}/cd/{track:02}.wav")
    }
    /// The digest cache.
    pub fn digests(&self) -> PathBuf {
        self.root.join("digests.json")
    }
}

/// The drive that puts one song alone on the target.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OwnDrive {
    /// Limiter drive, dB.
    pub drive_db: f64,
    /// Integrated loudness reached, LUFS.
    pub lufs: f64,
    /// Tail passes the solver took.
    pub passes: u32,
}

/// What the measure job found out about a song.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeasureRecord {
    /// Track number.
    pub track: usize,
    /// Title.
    pub title: String,
    /// The measure key the record is for.
    pub key: String,
    /// Session sample rate.
    pub sample_rate_hz: u32,
    /// Output channels.
    pub channels: usize,
    /// Song length in frames (without the graph's tail).
    pub song_frames: u64,
    /// Frames in the spill (with the graph's tail).
    pub spill_frames: u64,
    /// Integrated loudness of the pre-limiter master, LUFS.
    #[serde(with = "level_db")]
    pub pre_limiter_lufs: f64,
    /// Loudness range of the pre-limiter master, LU.
    #[serde(with = "level_db")]
    pub pre_limiter_lra_lu: f64,
    /// The song's own drive to the target, when the policy needs it.
    pub own: Option<OwnDrive>,
    /// The master limiter's node id.
    pub limiter: String,
    /// Warnings of the graph.
    pub warnings: Vec<String>,
}

/// The drives the policy gave the songs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GainRecord {
    /// The policy applied.
    pub policy: Policy,
    /// The measure keys the drives were computed from, in track order.
    pub measure_keys: Vec<String>,
    /// Every song's limiter drive, dB, in track order.
    pub drives_db: Vec<f64>,
    /// Album gain: the drive every song shares, dB.
    pub album_gain_db: Option<f64>,
    /// Album gain keyed to the loudest song: its track number.
    pub reference_track: Option<usize>,
    /// Album gain keyed to the whole album: its loudness at that gain (before dither), LUFS.
    pub album_lufs_at_gain: Option<f64>,
    /// Passes of the tail chains the solve took (the whole album counts once per pass).
    pub solve_passes: u32,
}

/// One file a render job wrote, measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileRecord {
    /// Path relative to the output folder.
    pub path: String,
    /// `wav` or `flac`.
    pub format: String,
    /// Bits per sample.
    pub bits: u32,
    /// Sample rate.
    pub sample_rate_hz: u32,
    /// Frames.
    pub frames: u64,
    /// Samples clipped by quantization.
    pub clipped_samples: u64,
    /// Whether it was dithered.
    pub dithered: bool,
    /// The safety limiter's ceiling.
    pub ceiling_dbtp: Option<f64>,
    /// The safety limiter's largest gain reduction, dB.
    pub safety_gain_reduction_db: f64,
    /// True peak measured on the file (8× oversampled), dBTP.
    #[serde(with = "level_db")]
    pub true_peak_dbtp: f64,
    /// Integrated loudness measured on the file, LUFS.
    #[serde(with = "level_db")]
    pub integrated_lufs: f64,
    /// SHA-256 of the file.
    pub sha256: String,
}

/// Measurements of a song's master as delivered.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SongStats {
    /// Integrated loudness, LUFS.
    #[serde(with = "level_db")]
    pub integrated_lufs: f64,
    /// Loudness range, LU.
    #[serde(with = "level_db")]
    pub loudness_range_lu: f64,
    /// True peak (8×), dBTP.
    #[serde(with = "level_db")]
    pub true_peak_dbtp: f64,
    /// Sample peak, dBFS.
    #[serde(with = "level_db")]
    pub sample_peak_dbfs: f64,
    /// Short-term loudness maximum, LUFS.
    #[serde(with = "level_db")]
    pub short_term_max_lufs: f64,
    /// Duration, s.
    pub duration_s: f64,
}

/// What the render job wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenderRecord {
    /// Track number.
    pub track: usize,
    /// Title.
    pub title: String,
    /// The render key the record is for.
    pub key: String,
    /// The limiter drive it was rendered with, dB.
    pub drive_db: f64,
    /// The deliverables.
    pub files: Vec<FileRecord>,
    /// The file the song's measurements come from (the first at the session rate).
    pub measured_file: String,
    /// The master as delivered, measured on `measured_file`.
    pub stats: SongStats,
    /// The CD track, relative to the output folder, when the album has a CD image.
    pub cd_track: Option<String>,
    /// Warnings.
    pub warnings: Vec<String>,
}

/// Writes `bytes` to `path` through a temporary file renamed into place.
///
/// The temporary name is unique to the writer even across machines sharing the folder (jobs on
/// two machines may have the same process id): it carries the process id, the thread and a
/// random number drawn once per process.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::hash::{BuildHasher, Hasher};
    static WRITER: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let writer = *WRITER.get_or_init(|| {
        // RandomState is seeded from the system's randomness, differently in every process.
        std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
    });
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.{}.{writer:016x}.{:?}.partial",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Writes a record as pretty JSON, atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), AlbumError> {
    let json = serde_json::to_vec_pretty(value).map_err(|source| AlbumError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    write_atomic(path, &json).map_err(|source| AlbumError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a record; `None` when the file does not exist or is not a record of this version
/// (it is then simply redone).
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Option<T> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// A file and its content digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Digested {
    /// The file.
    pub path: String,
    /// SHA-256 of its content.
    pub sha256: String,
}

/// One song in the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestSong {
    /// Track number.
    pub track: usize,
    /// Title.
    pub title: String,
    /// Key of its measurement.
    pub measure_key: String,
    /// Key of its render.
    pub render_key: String,
    /// Its limiter drive, dB.
    pub drive_db: f64,
    /// Its stems.
    pub stems: Vec<Digested>,
    /// The files it was loaded from besides the album file (recipe, templates, modules).
    pub inputs: Vec<Digested>,
    /// The files delivered.
    pub files: Vec<Digested>,
}

/// The manifest of a finished album render (`<out>/.stemgraph-album/manifest.json`): every
/// input and output with its digest, the keys, and the key of the report they make.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// stemgraph's version.
    pub engine_version: String,
    /// The album file.
    pub album_file: String,
    /// SHA-256 of the album file.
    pub album_file_sha256: String,
    /// The policy.
    pub policy: Policy,
    /// The album gain, when the policy has one.
    pub album_gain_db: Option<f64>,
    /// Key of the report: every render key, the album's title, artist, policy and CD image.
    pub report_key: String,
    /// How the album gain moved since the previous manifest, when it did.
    #[serde(default)]
    pub album_gain_move: Option<GainMove>,
    /// The songs.
    pub songs: Vec<ManifestSong>,
}

/// In album-gain mode, one song's change can move the album gain, and with it every song's
/// drive: what moved since the previous finished render (the previous manifest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GainMove {
    /// The album gain of the previous render, dB.
    pub previous_db: f64,
    /// The album gain now, dB.
    pub current_db: f64,
    /// `current_db - previous_db`, dB.
    pub moved_db: f64,
    /// Songs whose inputs changed (measured again): what moved the gain.
    pub changed_tracks: Vec<usize>,
    /// Songs whose inputs did not change but whose drive did: rendered again for the new album
    /// gain alone.
    pub moved_tracks: Vec<usize>,
}

impl GainMove {
    /// What moved between the `previous` manifest and the drives of `gain` given to songs
    /// measured with `measures` (in track order); `None` unless both have an album gain and it
    /// differs (to the bit: a render key changes with any change of the drive).
    pub fn between(
        previous: &Manifest,
        measures: &[MeasureRecord],
        gain: &GainRecord,
    ) -> Option<GainMove> {
        let (before, now) = (previous.album_gain_db?, gain.album_gain_db?);
        if before.to_bits() == now.to_bits() {
            return None;
        }
        let mut changed_tracks = Vec::new();
        let mut moved_tracks = Vec::new();
        for (m, drive) in measures.iter().zip(&gain.drives_db) {
            match previous.songs.iter().find(|s| s.track == m.track) {
                Some(old) if old.measure_key == m.key => {
                    if old.drive_db.to_bits() != drive.to_bits() {
                        moved_tracks.push(m.track);
                    }
                }
                _ => changed_tracks.push(m.track),
            }
        }
        Some(GainMove {
            previous_db: before,
            current_db: now,
            moved_db: now - before,
            changed_tracks,
            moved_tracks,
        })
    }

    /// The move in words, for reports.
    pub fn describe(&self) -> String {
        let list = |t: &[usize]| {
            let names: Vec<String> = t.iter().map(usize::to_string).collect();
            match names.len() {
                0 => "none".to_string(),
                1 => format!("track {}", names[0]),
                _ => format!("tracks {}", names.join(", ")),
            }
        };
        format!(
            "the album gain moved from {:+.2} dB to {:+.2} dB ({:+.2} dB) since the previous render; \
             changed: {}; rendered again for the new gain alone: {}",
            self.previous_db,
            self.current_db,
            self.moved_db,
            list(&self.changed_tracks),
            list(&self.moved_tracks)
        )
    }
}

impl WorkDir {
    /// The manifest.
    pub fn manifest(&self) -> PathBuf {
        self.root.join("manifest.json")
    }
}
