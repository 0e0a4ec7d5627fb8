//! Integration tests: one binary, a module per area.

mod analysis;
mod bench;
mod cli;
mod common;
mod devices;
mod family;
mod firsthour;
mod gemma;
mod interrupt;
mod malformed;
mod pipes;
mod props;
mod quantize;
mod real_model;
mod secondhour;
mod svg;
mod synthetic;
mod variants;
