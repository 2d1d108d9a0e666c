//! Separation of duties (issue 14 §3): an approver never decides a request for themselves.
//!
//! The request's person is its canonical e-mail ([`guestlist_core::email::canonical`]); the
//! approver is every e-mail-like name their token gives them — `preferred_username` (v2.0),
//! `email` (optional claim) and `upn` (v1.0) — in the same canonical form, so case, fullwidth or
//! Unicode-compatible spellings of one address are one person. A match refuses both approving
//! and denying with 403 `decision.self_approval`.

use guestlist_core::email::canonical;
use uuid::Uuid;

use guestlist_core::code::Code;

use crate::AppState;
use crate::auth::TokenClaims;
use crate::error::ApiError;

/// The error code of a refused self-decision (403).
pub const SELF_APPROVAL: Code = Code::DecisionSelfApproval;

/// Whether any of `approver_addresses` (as the token sends them) is, in canonical form, the
/// person `request_email` names. Addresses with no canonical form never match. `request_email`
/// is canonicalised too (rows stored before canonical keys keep their lower-cased text).
pub fn is_own_request<'a>(
    request_email: &str,
    approver_addresses: impl IntoIterator<Item = &'a str>,
) -> bool {
    let person = canonical(request_email).unwrap_or_else(|_| request_email.trim().to_lowercase());
    approver_addresses
        .into_iter()
        .filter_map(|a| canonical(a).ok())
        .any(|a| a == person)
}

/// Refuses a decision on request `id` by the approver of `claims` when the request is their
/// own ([`is_own_request`]).
///
/// Errors: 403 `decision.self_approval`; 404 when there is no such request; 500 on storage
/// failure.
pub async fn refuse_self_approval(
    state: &AppState,
    id: Uuid,
    claims: &TokenClaims,
) -> Result<(), ApiError> {
    let request = state.store.get(id).await?;
    if is_own_request(&request.key.email, claims.own_addresses()) {
        return Err(ApiError::Status {
            status: axum::http::StatusCode::FORBIDDEN,
            code: SELF_APPROVAL,
            message: "an approver cannot decide their own request: another approver must decide it"
                .into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_addresses_match_in_canonical_form() {
        assert!(is_own_request("ada@contoso.com", ["ADA@Contoso.com"]));
        assert!(is_own_request(
            "ada@contoso.com",
            ["ａｄａ@ｃｏｎｔｏｓｏ.com"]
        ));
        assert!(is_own_request(
            "ada@contoso.com",
            [
                "ada_contoso.com#EXT#@fabrikam.onmicrosoft.com",
                "ada@contoso.com"
            ]
        ));
        assert!(!is_own_request("ada@contoso.com", ["grace@contoso.com"]));
        assert!(!is_own_request("ada@contoso.com", ["not an address"]));
        assert!(!is_own_request("ada@contoso.com", []));
    }
}
