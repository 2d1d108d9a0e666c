//! guestlist-graph
