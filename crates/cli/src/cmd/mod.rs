//! One module per subcommand.

pub mod bench;
pub mod bench_node;
pub mod creds;
pub mod demo;
pub mod device;
pub mod miner;
pub mod node;
pub mod scan;
pub mod sim;
pub mod user;

/// Raises the open-file soft limit to the hard limit: scans and fleets hold many sockets.
pub fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}
