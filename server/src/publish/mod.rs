//! Publishing: reading npm's publish document, checking the tarball against it, and the
//! packument served back. The gate itself is in [`crate::gate`]; the publish change in
//! [`crate::changes::publish`].

pub mod cache;
pub mod diff;
pub mod packument;
pub mod served;
pub mod tarball;
