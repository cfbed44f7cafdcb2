//! loom models live in `tests/`; see the crate README section "Testing".
