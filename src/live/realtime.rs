//! Real-time scheduling for the audio thread.
//!
//! On a busy machine (a compiler on every core) an audio thread at normal priority waits its
//! turn and the device runs dry. The device callback therefore asks, on its first call, for
//! `SCHED_FIFO` at [`RT_PRIORITY`] for its own thread (`pthread_setschedparam`: allowed to root,
//! to a user with an `rtprio` limit, or with `CAP_SYS_NICE`). The outcome goes to
//! [`SharedStatus::realtime`](super::shared::SharedStatus::realtime); the control side says it
//! once in the event log (see [`describe`]).
//!
//! # Realtime safety
//! [`promote_current_thread`] is one system call, no allocation; it runs once.

/// The `SCHED_FIFO` priority asked for: above a sound server's own (PulseAudio asks for 5),
/// at rtkit's usual ceiling, far below the kernel's threaded interrupts (50).
pub const RT_PRIORITY: i32 = 10;

/// Asks for `SCHED_FIFO` at [`RT_PRIORITY`] for the calling thread: `Ok(priority)`, or
/// `Err(errno)` when the system refuses.
#[cfg(unix)]
pub fn promote_current_thread() -> Result<i32, i32> {
    // SAFETY: plain calls on the current thread with a fully initialised parameter.
    unsafe {
        let mut param: libc::sched_param = std::mem::zeroed();
        param.sched_priority = RT_PRIORITY;
        match libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &param) {
            0 => Ok(RT_PRIORITY),
            errno => Err(errno),
        }
    }
}

/// Names of the threads a sound server's client library runs inside our process to carry the
/// audio to the server: PulseAudio's threaded main loop (its ALSA plugin, `default` on a
/// PulseAudio desktop). At normal priority they wait behind a busy machine like any thread, and
/// the server runs dry although the callback was on time.
const CLIENT_THREADS: &[&str] = &["threaded-ml"];

/// Gives the sound-server client threads of this process ([`CLIENT_THREADS`]) the audio
/// thread's `SCHED_FIFO` priority; returns how many were promoted. Call after the stream has
/// started (the threads exist then), on the control side: it reads `/proc`.
#[cfg(target_os = "linux")]
pub fn promote_client_threads() -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    let mut promoted = 0;
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !CLIENT_THREADS.contains(&comm.trim()) {
            continue;
        }
        let Some(tid) = task
            .file_name()
            .to_str()
            .and_then(|t| t.parse::<i32>().ok())
        else {
            continue;
        };
        // SAFETY: a plain system call on a thread of this process, with an initialised
        // parameter.
        let ok = unsafe {
            let mut param: libc::sched_param = std::mem::zeroed();
            param.sched_priority = RT_PRIORITY;
            libc::sched_setscheduler(tid, libc::SCHED_FIFO, &param) == 0
        };
        promoted += usize::from(ok);
    }
    promoted
}

/// Gives the sound-server client threads real-time priority (Linux only).
#[cfg(not(target_os = "linux"))]
pub fn promote_client_threads() -> usize {
    0
}

/// Asks for real-time scheduling for the calling thread (not supported here).
#[cfg(not(unix))]
pub fn promote_current_thread() -> Result<i32, i32> {
    Err(0)
}

/// The event-log line for a [`SharedStatus::realtime`](super::shared::SharedStatus::realtime)
/// value, and whether it is a problem; `None` while the callback has not asked yet.
pub fn describe(value: i32) -> Option<(String, bool)> {
    match value {
        0 => None,
        super::shared::RT_NOT_ASKED => Some((
            "audio thread: normal priority (--no-realtime); playback may drop out under load"
                .into(),
            false,
        )),
        p if p > 0 => Some((
            format!("audio thread: real-time priority (SCHED_FIFO {p})"),
            false,
        )),
        e => Some((
            format!(
                "audio thread: real-time priority refused ({}); playback may drop out when other \
                 programs load the machine. Allow it with an `rtprio` limit for your user \
                 (/etc/security/limits.d) or a larger --buffer-frames",
                std::io::Error::from_raw_os_error(-e)
            ),
            true,
        )),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_reads_as_one_line() {
        assert_eq!(describe(0), None);
        let (granted, problem) = describe(10).unwrap();
        assert!(granted.contains("SCHED_FIFO 10") && !problem);
        let (refused, problem) = describe(-libc::EPERM).unwrap();
        assert!(refused.contains("refused") && problem, "{refused}");
        assert!(
            refused.to_lowercase().contains("not permitted"),
            "{refused}"
        );
        let (off, problem) = describe(super::super::shared::RT_NOT_ASKED).unwrap();
        assert!(off.contains("--no-realtime") && !problem);
    }

    #[test]
    fn a_thread_asks_and_gets_an_answer() {
        // Either outcome is legitimate (root may, a plain user may not); what must hold is
        // that the answer is the system's: a granted thread really runs SCHED_FIFO.
        let got = std::thread::spawn(|| {
            let r = promote_current_thread();
            // SAFETY: reads the current thread's own scheduling.
            let policy = unsafe {
                let mut p: libc::sched_param = std::mem::zeroed();
                let mut policy = 0;
                libc::pthread_getschedparam(libc::pthread_self(), &mut policy, &mut p);
                (policy, p.sched_priority)
            };
            (r, policy)
        })
        .join()
        .unwrap();
        match got {
            (Ok(p), policy) => assert_eq!(policy, (libc::SCHED_FIFO, p)),
            (Err(e), policy) => {
                assert_ne!(e, 0);
                assert_ne!(policy.0, libc::SCHED_FIFO);
            }
        }
    }
}
