//! An agent embedding the speaker (what a kube-router-style agent does): it builds the
//! configuration in code, peers with a neighbour, announces its pod block, and programs
//! routes itself by following the stream of best-path changes.
//!
//! Run two of them against each other on loopback addresses:
//!
//! ```text
//! cargo run -p bgp-speaker --example embed_agent -- 127.0.0.2 127.0.0.3 10.244.2.0/26
//! cargo run -p bgp-speaker --example embed_agent -- 127.0.0.3 127.0.0.2 10.244.3.0/26
//! ```
//!
//! Arguments: our address, the neighbour's address, the block to announce. Both use AS
//! 64512 and port 11179. Each prints the routes it would install, until Ctrl-C, which closes
//! the session with an RFC 8203 shutdown message.

use std::net::{IpAddr, SocketAddr};

use bgp_speaker::config::{Config, GracefulRestartConfig, Originate, PeerConfig};
use bgp_speaker::{RouteChange, Speaker, SpeakerOptions};
use ipnet::IpNet;

const ASN: u32 = 64512;
const PORT: u16 = 11179;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [me, neighbour, block] = args.as_slice() else {
        eprintln!("usage: embed_agent OUR_ADDRESS NEIGHBOUR_ADDRESS BLOCK");
        std::process::exit(2);
    };
    let me: IpAddr = me.parse()?;
    let neighbour: IpAddr = neighbour.parse()?;
    let block: IpNet = block.parse()?;
    let IpAddr::V4(router_id) = me else {
        return Err("use an IPv4 address (it is also the router id)".into());
    };

    // The configuration is a plain value, built in code. No graceful restart: an agent
    // that restarts starts from scratch.
    let cfg = Config::builder(ASN, router_id)
        .listen([SocketAddr::new(me, PORT)])
        .graceful_restart(GracefulRestartConfig {
            enabled: false,
            ..GracefulRestartConfig::default()
        })
        .build()?;

    let speaker = Speaker::start(cfg, SpeakerOptions::default()).await?;

    // Subscribe before announcing anything so no change is missed.
    let mut changes = speaker.subscribe();

    let mut peer = PeerConfig::new(format!("Node_{neighbour}"), neighbour, ASN);
    peer.port = PORT;
    peer.source_address = Some(me);
    peer.hold_time = 9;
    peer.keepalive = 3;
    peer.connect_retry = 1;
    peer.graceful_restart.enabled = false;
    // Calico's rule: the greater address (as a string) connects, the other waits.
    peer.passive = me.to_string() < neighbour.to_string();
    speaker.add_peer(peer).await?;
    speaker.advertise(Originate::new(block)).await?;

    loop {
        tokio::select! {
            change = changes.recv() => match change {
                Ok(RouteChange::Best(r)) if !r.next_hops.is_empty() => {
                    println!("install {} via {:?} (local_pref {})", r.prefix, r.next_hops, r.local_pref);
                }
                Ok(RouteChange::Best(r)) => println!("local route {}", r.prefix),
                Ok(RouteChange::Removed(p)) => println!("remove  {p}"),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    // Fell behind: resynchronise from the full table.
                    eprintln!("missed {n} changes; re-reading the table");
                    for r in speaker.best_routes().await? {
                        println!("state   {} via {:?}", r.prefix, r.next_hops);
                    }
                }
                Err(_) => break,
            },
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    for p in speaker.peers().await? {
        println!(
            "{}: {} ({} prefixes received)",
            p.config.name, p.state, p.prefixes.received
        );
    }
    speaker.shutdown("agent stopping").await;
    Ok(())
}
