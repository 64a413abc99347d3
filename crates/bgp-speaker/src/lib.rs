//! Embeddable tokio BGP speaker: sessions over TCP, RIB task, kernel FIB, config and control API.
