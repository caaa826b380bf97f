//! One frame written to many sockets in one call: the write loop of a broadcast.

/// Sockets per thread below which splitting the loop costs more (a thread's start) than it saves.
const PER_THREAD: usize = 256;

/// `send_all`, split over as many threads as this process may run on at once (its CPU affinity):
/// most of a send is the kernel's TCP work, which then proceeds on several cores.
pub fn send_all_parallel(fds: &[i32], data: &[u8]) -> Vec<(usize, usize)> {
    if fds.len() < 2 * PER_THREAD {
        return send_all(fds, data);
    }
    // Asked once: on Linux the answer reads the cgroup's CPU quota from files.
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let cores = *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let threads = cores.min(fds.len() / PER_THREAD);
    if threads < 2 {
        return send_all(fds, data);
    }
    let chunk = fds.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = fds
            .chunks(chunk)
            .enumerate()
            .map(|(n, part)| {
                scope.spawn(move || {
                    let mut incomplete = send_all(part, data);
                    for entry in &mut incomplete {
                        entry.0 += n * chunk;
                    }
                    incomplete
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| worker.join().expect("send_all does not panic"))
            .collect()
    })
}

/// `send()`s `data` on each socket of `fds` without blocking, and returns `(index, bytes taken)` for
/// each socket that did not take all of it: 0 when its buffer was full or it failed, so the caller
/// writes that frame (or its rest) through the connection's transport, which reports the error.
#[cfg(unix)]
pub fn send_all(fds: &[i32], data: &[u8]) -> Vec<(usize, usize)> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    const FLAGS: libc::c_int = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    const FLAGS: libc::c_int = libc::MSG_DONTWAIT; // Python ignores SIGPIPE: a broken pipe is EPIPE
    let mut incomplete = Vec::new();
    for (index, &fd) in fds.iter().enumerate() {
        let taken = loop {
            // SAFETY: `data` is valid for reads of its length; send() does not keep the pointer.
            let n = unsafe { libc::send(fd, data.as_ptr().cast(), data.len(), FLAGS) };
            if n >= 0 {
                break n as usize;
            }
            if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                break 0;
            }
        };
        if taken != data.len() {
            incomplete.push((index, taken));
        }
    }
    incomplete
}

/// Without POSIX sockets nothing is sent here: every transport writes its own frame.
#[cfg(not(unix))]
pub fn send_all(fds: &[i32], _data: &[u8]) -> Vec<(usize, usize)> {
    (0..fds.len()).map(|index| (index, 0)).collect()
}

#[cfg(all(test, unix))]
mod tests {
    use super::send_all;

    fn pair() -> [i32; 2] {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors socketpair() writes.
        assert_eq!(
            unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, fds.as_mut_ptr()) },
            0
        );
        fds
    }

    #[test]
    fn threads_report_the_same_indexes() {
        let good = pair();
        let mut fds = vec![-1; 1000];
        fds[10] = good[0];
        fds[700] = good[0];
        let expected: Vec<_> = (0..1000)
            .filter(|&i| i != 10 && i != 700)
            .map(|i| (i, 0))
            .collect();
        assert_eq!(super::send_all_parallel(&fds, b"x"), expected);
        // SAFETY: closing descriptors this test owns.
        unsafe {
            libc::close(good[0]);
            libc::close(good[1]);
        }
    }

    #[test]
    fn writes_every_socket_and_reports_failures() {
        let (a, b) = (pair(), pair());
        // SAFETY: closing a descriptor this test owns; -1 is never a valid descriptor.
        unsafe { libc::close(b[1]) };
        let incomplete = send_all(&[a[0], -1, b[0]], b"frame");
        assert_eq!(incomplete, vec![(1, 0), (2, 0)]);
        let mut buf = [0u8; 16];
        // SAFETY: `buf` is valid for writes of its length.
        let n = unsafe { libc::recv(a[1], buf.as_mut_ptr().cast(), buf.len(), 0) };
        assert_eq!(&buf[..n as usize], b"frame");
        // SAFETY: closing descriptors this test owns.
        unsafe {
            libc::close(a[0]);
            libc::close(a[1]);
            libc::close(b[0]);
        }
    }
}
