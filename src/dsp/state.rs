//! Handing a processor's signal state to its successor at a hot reload: the one mechanism every
//! stateful processor implements ([`crate::dsp::Processor::take_state`]).
//!
//! When a reload compiles a new schedule, every node that continues an old node (same id, kind
//! and parameter list) takes over the old node's signal state (filter memories, envelopes, delay
//! lines, noise generators, position counters), so that it goes on as if no reload had happened:
//!
//! - [`Handover::Move`]: the old processor is discarded (a reload that changed only parameter
//!   values). The state is swapped, which costs nothing and cannot allocate or free; the old
//!   processor is left with the new one's fresh state and dropped later, off the audio thread.
//! - [`Handover::Copy`]: the old processor goes on playing in a crossfade (a reload that changed
//!   the graph's structure). The state is copied in place into the new processor's buffers of the
//!   same sizes, which does not allocate either.
//!
//! A processor declares, with [`hand_over!`](crate::hand_over), every one of its fields as
//! `config` (must be equal for a hand-over: a structural option such as a mode or a channel
//! count), `state` (handed over) or `own` (stays with each instance: the parameter list, the
//! telemetry slots the control side reads, scratch buffers). The macro lists them exhaustively,
//! so a field added later that is not declared is a compile error. State types implement
//! [`SignalState`], which checks that two states have the same buffer sizes before anything is
//! moved or copied: that check is what guarantees that a copy never allocates.

/// How a new processor takes over the state of the old one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handover {
    /// The old processor is discarded: swap the states (free, no allocation).
    Move,
    /// The old processor goes on playing (a crossfade): copy its state in place.
    Copy,
}

/// Signal state that can be handed over in place, without allocating.
pub trait SignalState {
    /// Whether `other` has the same shape (buffer sizes, variants), so that
    /// [`SignalState::copy_from`] does not allocate.
    fn fits(&self, other: &Self) -> bool;

    /// Copies `other` into `self` in place. Only called when [`SignalState::fits`] holds.
    ///
    /// # Realtime safety
    /// Must not allocate or free when the two fit.
    fn copy_from(&mut self, other: &Self);
}

/// Hands `old` over to `new` by `how`; returns false (and touches nothing) when they do not fit.
///
/// # Realtime safety
/// Never allocates or frees: a move swaps, a copy goes into buffers of the same sizes.
pub fn hand_over<S: SignalState>(new: &mut S, old: &mut S, how: Handover) -> bool {
    if !new.fits(old) {
        return false;
    }
    match how {
        Handover::Move => std::mem::swap(new, old),
        Handover::Copy => new.copy_from(old),
    }
    true
}

/// Implements [`SignalState`] for `Copy` types: a plain assignment, which always fits.
/// `copy_state!([T: Copy] Cached<T>)` for a generic type.
#[macro_export]
macro_rules! copy_state {
    ([$($g:tt)*] $t:ty) => {
        impl<$($g)*> $crate::dsp::state::SignalState for $t {
            #[inline]
            fn fits(&self, _: &Self) -> bool {
                true
            }
            #[inline]
            fn copy_from(&mut self, other: &Self) {
                *self = *other;
            }
        }
    };
    ($($t:ty),* $(,)?) => {
        $(
            impl $crate::dsp::state::SignalState for $t {
                #[inline]
                fn fits(&self, _: &Self) -> bool {
                    true
                }
                #[inline]
                fn copy_from(&mut self, other: &Self) {
                    *self = *other;
                }
            }
        )*
    };
}

copy_state!(f64, f32, u64, u32, usize, i64, bool);
copy_state!(
    crate::dsp::crossover::SvfState,
    crate::dsp::filters::FlushClock,
);

/// Implements [`SignalState`] for a struct field by field: `copy` fields are `Copy` values
/// (assigned), `state` fields implement [`SignalState`] themselves. Every field must be listed
/// (the macro destructures exhaustively: a new field that is not listed does not compile).
#[macro_export]
macro_rules! signal_state {
    ($t:ty { $(copy: $($c:ident),+ ;)? $(state: $($s:ident),+ ;)? }) => {
        impl $crate::dsp::state::SignalState for $t {
            fn fits(&self, other: &Self) -> bool {
                let Self { $($($c: _,)+)? $($($s: _,)+)? } = self;
                let _ = other;
                true $($(&& $crate::dsp::state::SignalState::fits(&self.$s, &other.$s))+)?
            }
            fn copy_from(&mut self, other: &Self) {
                $($(self.$c = other.$c;)+)?
                $($($crate::dsp::state::SignalState::copy_from(&mut self.$s, &other.$s);)+)?
            }
        }
    };
}

impl<T: SignalState, const N: usize> SignalState for [T; N] {
    fn fits(&self, other: &Self) -> bool {
        self.iter().zip(other).all(|(a, b)| a.fits(b))
    }
    fn copy_from(&mut self, other: &Self) {
        for (a, b) in self.iter_mut().zip(other) {
            a.copy_from(b);
        }
    }
}

impl<T: SignalState> SignalState for Vec<T> {
    fn fits(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().zip(other).all(|(a, b)| a.fits(b))
    }
    fn copy_from(&mut self, other: &Self) {
        for (a, b) in self.iter_mut().zip(other) {
            a.copy_from(b);
        }
    }
}

impl<T: SignalState> SignalState for Option<T> {
    fn fits(&self, other: &Self) -> bool {
        match (self, other) {
            (Some(a), Some(b)) => a.fits(b),
            (None, None) => true,
            _ => false,
        }
    }
    fn copy_from(&mut self, other: &Self) {
        if let (Some(a), Some(b)) = (self, other) {
            a.copy_from(b);
        }
    }
}

impl<T: SignalState + ?Sized> SignalState for Box<T> {
    fn fits(&self, other: &Self) -> bool {
        (**self).fits(other)
    }
    fn copy_from(&mut self, other: &Self) {
        (**self).copy_from(other);
    }
}

impl<A: SignalState, B: SignalState> SignalState for (A, B) {
    fn fits(&self, other: &Self) -> bool {
        self.0.fits(&other.0) && self.1.fits(&other.1)
    }
    fn copy_from(&mut self, other: &Self) {
        self.0.copy_from(&other.0);
        self.1.copy_from(&other.1);
    }
}

/// Implements [`crate::dsp::Processor::take_state`] (and `as_any`, `as_any_mut`) for a processor
/// whose fields are declared as `config` (equal in both, or no hand-over: `PartialEq`), `state`
/// (handed over: [`SignalState`]) and `own` (kept by each instance). Every field must be listed.
/// An optional `same: fn(&Self, &Self) -> bool` adds a check for what the fields cannot compare.
///
/// The hand-over also requires the same kind, output channels, parameter list and latency
/// ([`crate::dsp::same_shape`]) and states that fit ([`SignalState::fits`]).
#[macro_export]
macro_rules! hand_over {
    (
        $(config: $($c:ident),+ ;)?
        state: $($s:ident),+ ;
        $(own: $($o:ident),+ ;)?
        $(same: $same:expr ;)?
    ) => {
        fn take_state(
            &mut self,
            old: &mut dyn $crate::dsp::Processor,
            how: $crate::dsp::state::Handover,
        ) -> bool {
            use $crate::dsp::state::SignalState as _;
            let Self { $($($c: _,)+)? $($s: _,)+ $($($o: _,)+)? } = &*self;
            if !$crate::dsp::same_shape(self, old) {
                return false;
            }
            let Some(old) = old.as_any_mut().downcast_mut::<Self>() else {
                return false;
            };
            if !(true $($(&& self.$c == old.$c)+)?) {
                return false;
            }
            $(
                let same: fn(&Self, &Self) -> bool = $same;
                if !same(&*self, &*old) {
                    return false;
                }
            )?
            if !(true $(&& self.$s.fits(&old.$s))+) {
                return false;
            }
            $( $crate::dsp::state::hand_over(&mut self.$s, &mut old.$s, how); )+
            true
        }
        fn as_any(&self) -> &dyn ::std::any::Any {
            self
        }
        fn as_any_mut(&mut self) -> &mut dyn ::std::any::Any {
            self
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    struct Inner {
        ring: Vec<f64>,
        pos: usize,
    }
    signal_state!(Inner { copy: pos; state: ring; });

    #[test]
    fn a_copy_between_equal_sizes_is_a_clone() {
        let old = vec![
            Inner {
                ring: vec![1.0, 2.0],
                pos: 1,
            };
            3
        ];
        let mut new = vec![
            Inner {
                ring: vec![0.0; 2],
                pos: 0,
            };
            3
        ];
        let mut old_ = old.clone();
        assert!(hand_over(&mut new, &mut old_, Handover::Copy));
        assert_eq!(new, old);
        assert_eq!(old_, old, "a copy leaves the old state as it was");
    }

    #[test]
    fn a_move_swaps_and_sizes_that_differ_are_refused() {
        let mut old = Some(Inner {
            ring: vec![1.0; 4],
            pos: 3,
        });
        let mut new = Some(Inner {
            ring: vec![0.0; 4],
            pos: 0,
        });
        assert!(hand_over(&mut new, &mut old, Handover::Move));
        assert_eq!(new.as_ref().unwrap().ring, vec![1.0; 4]);
        assert_eq!(old.as_ref().unwrap().pos, 0);
        let mut short = Some(Inner {
            ring: vec![0.0; 3],
            pos: 0,
        });
        assert!(!hand_over(&mut short, &mut new, Handover::Copy));
        assert_eq!(
            short.unwrap().ring,
            vec![0.0; 3],
            "a refused hand-over touches nothing"
        );
        assert!(!hand_over(&mut None, &mut new, Handover::Move));
    }
}
