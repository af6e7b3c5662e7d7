//! Signal analysis (control side): meters and measurements that observe audio without changing
//! it, the stem checks and the null test, the analysis of audio files with its plots, and the
//! reports a render writes.

pub mod analyze;
pub mod check;
pub mod json;
pub mod meters;
#[cfg(feature = "plot")]
pub mod plot;
pub mod report;
pub mod series;
pub mod spectrum;
