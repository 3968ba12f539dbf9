//! Attacks on transparent brokering (`sluice run --transparent`): plain
//! `open` calls, no SDK.

use std::ffi::CString;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use crate::{blocked, preview, usage, Fail, Racer, Step};

/// The shared path buffer of `open-race`: one thread rewrites it while
/// another passes it to `open`.
static RACE_PATH: [AtomicU8; 512] = [const { AtomicU8::new(0) }; 512];

fn store_path(path: &[u8]) {
    for (slot, &b) in RACE_PATH.iter().zip(path.iter().chain(&[0])) {
        slot.store(b, Ordering::Relaxed);
    }
}

fn read_fd(fd: libc::c_int) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: reading into a local buffer from a descriptor we own.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n as usize]);
    }
}

/// `open-race PATH... N`: a thread cycles the shared buffer through the
/// paths while this one opens whatever it holds, N times. Every content
/// read is printed once; the test decides which ones must never appear.
pub(crate) fn open_race(paths: &[&str], iterations: u64) -> Step {
    if paths.iter().any(|p| p.len() >= RACE_PATH.len()) {
        return Err(usage("path too long for the race buffer"));
    }
    store_path(paths[0].as_bytes());
    let swapper = {
        let paths: Vec<Vec<u8>> = paths.iter().map(|p| p.as_bytes().to_vec()).collect();
        Racer::start(move |i| {
            store_path(&paths[i as usize % paths.len()]);
            Ok(())
        })
    };
    let mut seen = std::collections::BTreeMap::<Vec<u8>, u64>::new();
    let mut refused = 0u64;
    for _ in 0..iterations {
        // SAFETY: the buffer is static and always NUL-terminated (its last
        // byte is never written); the kernel and the supervisor read it.
        let fd = unsafe { libc::open(RACE_PATH.as_ptr().cast(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if fd < 0 {
            refused += 1;
            continue;
        }
        *seen.entry(read_fd(fd)).or_default() += 1;
        // SAFETY: closing the descriptor just opened.
        unsafe { libc::close(fd) };
    }
    swapper.finish("swapping the path")?;
    let mut report = format!("{iterations} opens, {refused} refused");
    for (content, n) in &seen {
        report += &format!("; {n}x {}", preview(content));
    }
    Ok(report)
}

/// `open-and-die PATH THREADS`: threads open PATH in a loop; once each has
/// opened it 50 times, the process kills itself with SIGKILL, with calls
/// in flight in the supervisor.
pub(crate) fn open_and_die(path: &str, threads: u64) -> Step {
    let c = CString::new(path).map_err(|_| usage("NUL in path"))?;
    let opened = Arc::new(AtomicU64::new(0));
    for _ in 0..threads {
        let (c, opened) = (c.clone(), opened.clone());
        std::thread::spawn(move || loop {
            // SAFETY: c is a valid C string.
            let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
            if fd >= 0 {
                // SAFETY: closing the descriptor just opened.
                unsafe { libc::close(fd) };
                opened.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let mut spins = 0u64;
    while opened.load(Ordering::Relaxed) < 50 * threads {
        spins += 1;
        if spins > 200_000_000 {
            return Err(Fail::Blocked(format!("{path}: the opens do not succeed")));
        }
        std::hint::spin_loop();
    }
    // SAFETY: killing ourselves.
    unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    unreachable!("SIGKILL returned")
}

/// `openat-dirfd DIR NAME`: opens DIR, then NAME relative to it.
pub(crate) fn openat_dirfd(dir: &str, name: &str) -> Step {
    let cdir = CString::new(dir).map_err(|_| usage("NUL in path"))?;
    let cname = CString::new(name).map_err(|_| usage("NUL in path"))?;
    // SAFETY: valid C string; a new descriptor or -1.
    let dfd = unsafe {
        libc::open(
            cdir.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if dfd < 0 {
        return Err(blocked(
            &format!("open {dir}"),
            &std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: dfd is open; cname is a valid C string.
    let fd = unsafe { libc::openat(dfd, cname.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    let err = std::io::Error::last_os_error();
    // SAFETY: closing our directory descriptor.
    unsafe { libc::close(dfd) };
    if fd < 0 {
        return Err(blocked(&format!("openat {dir} {name}"), &err));
    }
    let data = read_fd(fd);
    // SAFETY: closing the descriptor just opened.
    unsafe { libc::close(fd) };
    Ok(format!(
        "read {} bytes from {dir} {name}: {}",
        data.len(),
        preview(&data)
    ))
}

/// `int80-open PATH`: the i386 `open` (number 5) through `int 0x80`, with
/// the path copied below 4 GiB where a 32-bit pointer can name it.
#[cfg(target_arch = "x86_64")]
pub(crate) fn int80_open(path: &str) -> Step {
    // SAFETY: an anonymous private mapping; MAP_32BIT keeps it below 2 GiB.
    let page = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_32BIT,
            -1,
            0,
        )
    };
    if page == libc::MAP_FAILED || path.len() >= 4096 {
        return Err(usage("no low page for the path"));
    }
    // SAFETY: the page is ours, writable and larger than path + NUL
    // (zero-filled, so the NUL is there already).
    unsafe { std::ptr::copy_nonoverlapping(path.as_ptr(), page.cast::<u8>(), path.len()) };
    let ret: i32;
    // i386 ABI: number in eax, arguments in ebx, ecx, edx.
    // SAFETY: open reads the path from our page; clobbers are declared.
    unsafe {
        std::arch::asm!(
            "xchg {arg}, rbx",
            "int 0x80",
            "xchg {arg}, rbx",
            arg = inout(reg) page as u64 => _,
            inlateout("eax") 5 => ret,
            in("ecx") libc::O_RDONLY,
            in("edx") 0,
            out("r8") _, out("r9") _, out("r10") _, out("r11") _,
            options(nostack),
        );
    }
    if ret < 0 {
        let err = std::io::Error::from_raw_os_error(-ret);
        return Err(blocked(&format!("open {path} via int 0x80"), &err));
    }
    let data = read_fd(ret);
    Ok(format!("open {path} via int 0x80: {}", preview(&data)))
}

#[cfg(not(target_arch = "x86_64"))]
pub(crate) fn int80_open(_path: &str) -> Step {
    Err(usage("int 0x80 exists only on x86_64"))
}

/// The shared address of `connect-race`: a `sockaddr_un` one thread
/// rewrites while another passes it to `connect`.
static RACE_ADDR: [AtomicU8; 110] = [const { AtomicU8::new(0) }; 110];

fn store_addr(path: &[u8]) {
    let family = (libc::AF_UNIX as u16).to_ne_bytes();
    for (slot, &b) in RACE_ADDR.iter().zip(family.iter().chain(path).chain(&[0])) {
        slot.store(b, Ordering::Relaxed);
    }
}

/// `connect(fd)` to whatever the shared address holds; whether it worked.
fn connect_race_addr(fd: libc::c_int) -> bool {
    // SAFETY: the buffer is static, 110 bytes, always NUL-terminated (its
    // last byte is never written) and begins with AF_UNIX.
    let rc = unsafe {
        libc::connect(
            fd,
            RACE_ADDR.as_ptr().cast(),
            std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t,
        )
    };
    rc == 0
}

fn unix_stream() -> libc::c_int {
    // SAFETY: socket has no memory arguments.
    unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) }
}

/// `connect-race ALLOWED DENIED N`: a thread swaps the shared address
/// between two socket paths while this one connects a new socket to
/// whatever it holds, N times. The test counts what each server accepted.
pub(crate) fn connect_race(allowed: &str, denied: &str, iterations: u64) -> Step {
    if allowed.len().max(denied.len()) >= RACE_ADDR.len() - 3 {
        return Err(usage("path too long for sockaddr_un"));
    }
    store_addr(allowed.as_bytes());
    let paths = [allowed.as_bytes().to_vec(), denied.as_bytes().to_vec()];
    let swapper = Racer::start(move |i| {
        store_addr(&paths[i as usize % 2]);
        Ok(())
    });
    let mut connected = 0u64;
    for _ in 0..iterations {
        let fd = unix_stream();
        connected += u64::from(connect_race_addr(fd));
        // SAFETY: closing the socket made above.
        unsafe { libc::close(fd) };
    }
    swapper.finish("swapping the address")?;
    Ok(format!("{iterations} connects, {connected} connected"))
}

/// `connect-fd-race DENIED N`: connects descriptor T to the socket path
/// DENIED, N times, while a thread keeps replacing T (`dup2`) with a new
/// unix socket, then a new TCP socket. Whatever T is when the call is
/// checked, it must never reach DENIED.
pub(crate) fn connect_fd_race(denied: &str, iterations: u64) -> Step {
    if denied.len() >= RACE_ADDR.len() - 3 {
        return Err(usage("path too long for sockaddr_un"));
    }
    store_addr(denied.as_bytes());
    let target = unix_stream();
    let swapper = Racer::start(move |i| {
        let fresh = if i % 2 == 0 {
            unix_stream()
        } else {
            // SAFETY: socket has no memory arguments.
            unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) }
        };
        // SAFETY: dup2 over the shared number, then closing the original
        // of the new socket.
        unsafe {
            libc::dup2(fresh, target);
            libc::close(fresh);
        }
        Ok(())
    });
    let mut connected = 0u64;
    for _ in 0..iterations {
        connected += u64::from(connect_race_addr(target));
    }
    swapper.finish("swapping the descriptor")?;
    Ok(format!("{iterations} connects, {connected} connected"))
}

/// `own-listener-connect PATH`: installs a seccomp filter of its own that
/// hands `connect` to a listener this process holds, answers every call
/// with `CONTINUE` from a thread, and connects to the socket file PATH. The
/// newest filter takes the call, so with such a listener the program, not
/// the supervisor, would decide its own connects.
pub(crate) fn own_listener_connect(path: &str) -> Step {
    const LD_NR: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const RET: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    let insns = [
        libc::sock_filter {
            code: LD_NR,
            jt: 0,
            jf: 0,
            k: 0,
        },
        libc::sock_filter {
            code: JEQ,
            jt: 0,
            jf: 1,
            k: libc::SYS_connect as u32,
        },
        libc::sock_filter {
            code: RET,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_USER_NOTIF,
        },
        libc::sock_filter {
            code: RET,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ALLOW,
        },
    ];
    let prog = libc::sock_fprog {
        len: insns.len() as u16,
        filter: insns.as_ptr().cast_mut(),
    };
    // SAFETY: prctl with constant arguments; seccomp reads `prog`, which
    // points at `insns`, both alive for the call.
    let listener = unsafe {
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
            &prog as *const libc::sock_fprog,
        )
    };
    if listener < 0 {
        return Err(crate::last_error("seccomp(NEW_LISTENER)"));
    }
    let listener = listener as libc::c_int;
    std::thread::spawn(move || loop {
        // SAFETY: zeroed notification buffers, as the kernel requires.
        let mut notif: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        // SAFETY: RECV writes one seccomp_notif.
        if unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_RECV, &mut notif) } != 0 {
            continue;
        }
        let mut resp = libc::seccomp_notif_resp {
            id: notif.id,
            val: 0,
            error: 0,
            flags: libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
        };
        // SAFETY: SEND reads one seccomp_notif_resp.
        unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp) };
    });
    crate::net::path_connect(path)
}

/// Installs a seccomp filter of the probe's own that allows everything, as
/// a sandbox started inside sluice's would (bwrap, minijail, another
/// sluice): from then on the probe is a stacked sandbox's process. `via`:
/// `seccomp` or `prctl` (`PR_SET_SECCOMP`).
pub(crate) fn own_filter(via: &str) -> Step {
    let insns = [libc::sock_filter {
        code: (libc::BPF_RET | libc::BPF_K) as u16,
        jt: 0,
        jf: 0,
        k: libc::SECCOMP_RET_ALLOW,
    }];
    let prog = libc::sock_fprog {
        len: insns.len() as u16,
        filter: insns.as_ptr().cast_mut(),
    };
    // SAFETY: prctl with constant arguments; seccomp reads `prog`, which
    // points at `insns`, both alive for the call.
    let rc = unsafe {
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        match via {
            "seccomp" => libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                &prog as *const libc::sock_fprog,
            ),
            "prctl" => libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &prog as *const libc::sock_fprog,
            )
            .into(),
            _ => return Err(usage("own-filter: seccomp or prctl")),
        }
    };
    if rc != 0 {
        return Err(Fail::Usage(format!(
            "installing a seccomp filter: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok("a seccomp filter of its own".to_owned())
}
