//! HTTP routes: connectors (Entra), the approver API, events, and operations.

pub mod connectors;
pub mod events;
pub mod health;
pub mod privacy;
pub mod requests;
