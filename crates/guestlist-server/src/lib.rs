//! guestlist-server
