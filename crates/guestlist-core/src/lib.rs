//! # guestlist-core
//!
//! The pure domain of Guestlist: what the approval API speaks and decides, with no I/O.
//!
//! - [`code`]: [`Code`], every stable error code (`request.not_found`, …) as one enum.
//! - [`connector`]: the self-service sign-up (SSSU) API connector contract — the claims Entra's
//!   user flow sends and the `Continue` / `ShowBlockPage` / `ValidationError` answers
//!   (`docs/CONTRACTS.md` §1).
//! - [`email`]: the canonical e-mail address (NFKC, full case folding, IDNA domain; invisible
//!   characters refused): what counts as the same address.
//! - [`extension`]: the Entra External ID custom authentication extension contract for
//!   `OnAttributeCollectionStart` / `OnAttributeCollectionSubmit` (CONTRACTS.md §2).
//! - [`model`]: the approval request, its identity key and its state machine, plus the approver
//!   API's wire types.
//! - [`policy`]: auto-approve / auto-deny rules, the block-page codes and the localised
//!   `userMessage` texts.
//! - [`plan`]: the provisioning plan — the exact Microsoft Graph calls that create the guest
//!   account of an approved request (CONTRACTS.md §3).
//! - [`provider`]: identity provider keys and the one label every surface shows.
//! - [`deeplink`]: the desktop app's `guestlist://request/<id>` link.
//! - [`retry`]: `Retry-After` (delta-seconds and HTTP-date) and the jittered, capped backoff
//!   every HTTP client of Guestlist retries with.
//!
//! - [`openapi`] (feature `openapi`): OpenAPI schemas of the bodies whose serde form is
//!   hand-written (connector claims and answers, extension answers, conflict bodies).
//!
//! This crate must not depend on axum, tauri, reqwest, rusqlite or any other I/O crate.

pub mod code;
pub mod connector;
pub mod deeplink;
pub mod email;
pub mod extension;
pub mod model;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod plan;
pub mod policy;
pub mod provider;
pub mod retry;

pub use code::Code;
pub use connector::{Claims, ClaimsError, ConnectorResponse, ObjectIdentity};
pub use model::{ApprovalRequest, IdentityKey, RequestState};
