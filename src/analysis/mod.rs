//! Signal analysis (control side): meters and measurements that observe audio without changing
//! it, the stem checks and the null test, the analysis of audio files with its plots.
//! Render reports (which use these meters) belong to `render::report`.

pub mod analyze;
pub mod check;
pub mod json;
pub mod meters;
#[cfg(feature = "plot")]
pub mod plot;
pub mod series;
pub mod spectrum;
