//! The FIB channel (`SpeakerOptions::fib`, what the kernel component or an embedding agent
//! reads) never loses a change: while its reader is stalled the changes wait in the RIB
//! task, merged per prefix, and once it reads again the forwarding state it builds equals
//! the Loc-RIB.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use bgp_rib::FibChange;
use bgp_speaker::config::{self, Originate};
use bgp_speaker::{Speaker, SpeakerOptions};
use ipnet::IpNet;
use tokio::sync::mpsc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_fib_reader_loses_no_change() {
    let cfg = config::from_str(
        "[global]\nasn = 64512\nrouter_id = \"10.22.0.1\"\nlisten = [\"127.0.22.1:11192\"]\n\
         [global.control]\nenabled = false\n",
        Path::new("test.toml"),
    )
    .expect("config");
    // Room for one batch only, and nobody reading for now.
    let (tx, mut rx) = mpsc::channel::<Vec<FibChange>>(1);
    let options = SpeakerOptions {
        fib: Some(tx),
        ..SpeakerOptions::default()
    };
    let s = Speaker::start(cfg, options).await.expect("speaker");
    let prefix = |i: u32| -> IpNet { format!("10.22.{}.0/24", i).parse().expect("prefix") };
    for i in 0..200 {
        s.advertise(Originate::new(prefix(i)))
            .await
            .expect("advertise");
    }
    for i in 0..100 {
        s.withdraw(prefix(i)).await.expect("withdraw");
    }
    // The forwarding state the reader builds from every change it gets.
    let mut fib: BTreeMap<IpNet, bool> = BTreeMap::new();
    let want: Vec<IpNet> = (100..200).map(prefix).collect();
    for _ in 0..600 {
        while let Ok(batch) = rx.try_recv() {
            for c in batch {
                match c {
                    FibChange::Upsert(r) => fib.insert(r.prefix, true),
                    FibChange::Remove(p) => fib.insert(p, false),
                };
            }
        }
        let installed: Vec<IpNet> = fib.iter().filter(|(_, on)| **on).map(|(p, _)| *p).collect();
        if installed == want {
            let best: Vec<IpNet> = s
                .best_routes()
                .await
                .expect("routes")
                .into_iter()
                .map(|r| r.prefix)
                .collect();
            assert_eq!(best.len(), want.len());
            s.shutdown("test over").await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "the FIB never converged: {} prefixes installed, want {}",
        fib.values().filter(|on| **on).count(),
        want.len()
    );
}
