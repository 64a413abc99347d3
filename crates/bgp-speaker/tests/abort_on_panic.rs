//! A panic in any task aborts the process ([`bgp_speaker::abort_on_panic`], what bgpd
//! installs first thing): without it tokio would catch the panic and leave the daemon
//! half alive.
//!
//! The test runs itself again as a child process (`CHILD` set): the child installs the
//! hook, starts a multi-threaded tokio runtime like bgpd's, panics in a spawned task, then
//! sleeps and exits cleanly — which it must never reach.

use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::time::Duration;

const CHILD: &str = "BGP_SPEAKER_ABORT_TEST_CHILD";

#[test]
fn a_panicking_task_aborts_the_process() {
    if std::env::var_os(CHILD).is_some() {
        bgp_speaker::abort_on_panic();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let task = tokio::spawn(async {
                let v: Vec<u8> = Vec::new();
                // An out-of-range index: the kind of bug a panic means.
                std::hint::black_box(&v)[std::hint::black_box(3)]
            });
            let _ = task.await;
            tokio::time::sleep(Duration::from_secs(2)).await;
        });
        println!("still alive after a task panicked");
        return;
    }
    let exe = std::env::current_exe().expect("test binary");
    let out = Command::new(exe)
        .args([
            "--exact",
            "a_panicking_task_aborts_the_process",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .output()
        .expect("running the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stdout.contains("still alive"),
        "the process survived the panic: {stdout}"
    );
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "not aborted: {:?}\n{stderr}",
        out.status
    );
    assert!(stderr.contains("index out of bounds"), "{stderr}");
}
