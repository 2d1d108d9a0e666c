//! guestlist-devtenant
