//! Sans-IO protocol.
#![forbid(unsafe_code)]
