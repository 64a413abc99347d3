//! MRT (RFC 6396) reader and bgpdump -m formatter.
