//! Safe wrappers over the Linux syscalls ferry needs that neither `std` nor
//! `rustix` offer in the shape ferry wants.

pub mod fd_passing;
pub mod signals;
pub mod zero_copy;
