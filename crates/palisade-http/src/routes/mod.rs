//! Handlers, grouped by resource. Each module exposes `routes()` returning its router.

pub mod ops;
