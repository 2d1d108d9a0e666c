//! The self-service sign-up *user flow*, played against an approval API exactly as Entra does
//! (CONTRACTS.md §1; "Add a custom approval workflow to self-service sign-up", "Use API
//! connectors to customize and extend self-service sign-up"):
//!
//! 1. after the person authenticates with their identity provider, `POST
//!    {api}/connectors/check-approval-status` (step `postFederationSignup`);
//! 2. the attribute collection page (prefilled with claims a Continue returned);
//! 3. `POST {api}/connectors/request-approval` (step `postAttributeCollection`);
//! 4. on Continue, the account is created in the directory with the claims (overridden by the
//!    claims the Continue carried).
//!
//! Each call is an HTTP Basic `POST` of the flat claims JSON with `Content-Type:
//! application/json`; the answer must arrive within the timeout (20 s in Entra), else the call is
//! retried exactly once. Answers are parsed strictly ([`parse_answer`]); anything off-contract
//! ends the flow on Entra's generic error page. This parser is written from the contract on
//! purpose and shares no code with guestlist-core.
//!
//! [`generate`] makes realistic, reproducible sign-ups from a seed.
//!
//! External tenants (`tenant_kind = "external"`) run the same sign-up through *custom
//! authentication extensions* instead (`OnAttributeCollectionStart` / `…Submit`, CONTRACTS.md
//! §2) and create customer accounts: [`play_external`], [`play_all_flows`].
//!
//! Layers: `answer` (the strict connector answer parser), `player` (one sign-up through
//! both connector steps and the directory), `extension` (the strict extension answer parser),
//! `external` (one sign-up through both extension events) and `people` (who signs up: the
//! docs' fixtures and the seeded generator).

mod answer;
mod extension;
mod external;
mod people;
mod player;

pub use answer::{ConnectorAction, Step, parse_answer};
pub use extension::{
    DEFAULT_BLOCK_MESSAGE, ExtensionAnswer, ExtensionEvent, parse_extension_answer,
};
pub use external::{
    ExtensionConfig, ExternalResult, FlowMix, call_extension, play_all_flows, play_external,
};
pub use people::{Provider, SignUp, fixtures, generate, generate_with};
pub use player::{
    CallResult, Outcome, PlayerConfig, Summary, UserFlowError, call_connector, play, play_all,
};
