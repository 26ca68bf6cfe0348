//! ferry-proto
