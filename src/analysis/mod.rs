//! Signal analysis (control side): meters and measurements that observe audio without changing
//! it, the stem checks and the null test.

pub mod check;
pub mod meters;
