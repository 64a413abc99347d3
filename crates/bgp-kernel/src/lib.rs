//! Kernel FIB over rtnetlink: import routes Felix programs, install routes learned over BGP.
