//! guestlist-reviewer
