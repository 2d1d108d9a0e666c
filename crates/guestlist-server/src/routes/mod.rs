//! HTTP routes: connectors (Entra), the approver API, events, and operations.

pub mod audit;
pub mod connectors;
pub mod events;
pub mod external;
pub mod health;
pub mod privacy;
pub mod privacy_export;
pub mod reopen;
pub mod requests;
