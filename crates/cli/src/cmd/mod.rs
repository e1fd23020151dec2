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

/// Starts a simulated farm below the node's CPU priority: nice 10, and with `idle_only`
/// Linux `SCHED_IDLE` (it runs only on CPU time nothing else wants).
///
/// The farm stands in for machines of their own; on a shared host it yields to the node
/// instead of competing with it. For measuring the node, nice 10 alone was not enough: the
/// farm's dozen worker processes together outweighed the node's poller thread, which then
/// waited for a CPU 18 % of the time at 100,000 devices. The demo keeps nice 10, so its farm
/// still answers promptly while a browser and the dashboard keep the machine busy. Worker
/// processes inherit both.
pub fn yield_to_the_node(sim: &mut tokio::process::Command, idle_only: bool) {
    #[cfg(unix)]
    // SAFETY: setpriority and sched_setscheduler are async-signal-safe system calls that only
    // change the child's own scheduling; the parameter struct outlives the call.
    unsafe {
        sim.pre_exec(move || {
            libc::setpriority(libc::PRIO_PROCESS, 0, 10);
            #[cfg(target_os = "linux")]
            if idle_only {
                let param = libc::sched_param { sched_priority: 0 };
                libc::sched_setscheduler(0, libc::SCHED_IDLE, &param);
            }
            Ok(())
        });
    }
    #[cfg(not(all(unix, target_os = "linux")))]
    let _ = idle_only;
}

/// Waits up to 10 minutes for a child (`hashmesh sim`, a bench server) to print its `ready`
/// line on stdout.
pub async fn wait_ready(child: &mut tokio::process::Child, what: &str) -> anyhow::Result<()> {
    use anyhow::{Context, bail};
    use tokio::io::{AsyncBufReadExt, BufReader};
    let stdout = child
        .stdout
        .take()
        .with_context(|| format!("no stdout from {what}"))?;
    let mut lines = BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(std::time::Duration::from_secs(600), async {
        while let Some(line) = lines.next_line().await? {
            if line.starts_with("ready") {
                return Ok::<bool, std::io::Error>(true);
            }
        }
        Ok(false)
    })
    .await;
    match ready {
        Ok(Ok(true)) => Ok(()),
        Ok(Ok(false)) => bail!("{what} exited before it was ready"),
        Ok(Err(e)) => bail!("reading {what} output: {e}"),
        Err(_) => bail!("{what} was not ready within 10 minutes"),
    }
}

/// The entries of a `hashmesh sim --manifest` file (a JSON array, or one object per line).
pub fn parse_manifest<T: serde::de::DeserializeOwned>(text: &str) -> anyhow::Result<Vec<T>> {
    use anyhow::Context;
    match serde_json::from_str(text) {
        Ok(list) => Ok(list),
        Err(_) => text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()
            .context("parsing the simulator's manifest"),
    }
}
