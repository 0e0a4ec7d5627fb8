//! Integration tests: one binary, a module per area.

mod cli;
mod common;
mod real_model;
mod synthetic;
