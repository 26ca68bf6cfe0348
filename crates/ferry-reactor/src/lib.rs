//! ferry-reactor
