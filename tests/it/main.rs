//! Integration tests (one binary).

mod reviewer;
mod reviewer_graph;
