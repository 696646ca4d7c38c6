//! Domain tags: re-exported from the one registry, [`phalanx_types::tag`].

pub use phalanx_types::tag::*;
