//! The allocation guard really trips: the canary for every real-time test.
use crate::common;

#[test]
fn canary_allocation_inside_guard_is_counted() {
    let (_, violations) = common::alloc_violations(|| {
        assert_no_alloc::assert_no_alloc(|| {
            let v: Vec<u8> = Vec::with_capacity(64);
            std::hint::black_box(v);
        })
    });
    assert!(violations >= 1, "the guard did not see an allocation");
}

#[test]
fn no_allocation_no_violation() {
    let (_, violations) = common::alloc_violations(|| {
        assert_no_alloc::assert_no_alloc(|| std::hint::black_box(1 + 1))
    });
    assert_eq!(violations, 0);
}
