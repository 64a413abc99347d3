//! Deterministic in-memory simulation of whole BGP clusters over the sans-IO core and the RIB.
