//! Signal analysis: meters and measurements that observe audio without changing it.

pub mod meters;
