//! The fixed demo identities of devtenant's default tenant.
//!
//! Other Guestlist components (guestlist-server, the desktop app, `make demo`, the workspace
//! tests) are configured with these values when they run against devtenant. Every one of them
//! can be overridden through [`crate::DevTenantConfig`]. The names mirror the Entra portal's
//! (app registration "Application (client) ID", "Application ID URI", "Directory (tenant) ID").

/// Directory (tenant) ID: the `tid` claim and the `{tenant}` path segment of the sign-in URLs.
pub const TENANT_ID: &str = "4a1e2d3c-5b6f-4789-9abc-def012345678";
/// The tenant's initial (verified) domain; also accepted as the `{tenant}` path segment and the
/// only domain allowed in `userPrincipalName` values on Graph.
pub const TENANT_DOMAIN: &str = "contoso.onmicrosoft.com";
/// Display name of the tenant shown on the sign-in page.
pub const TENANT_NAME: &str = "Contoso (devtenant)";

/// Client ID of the Guestlist desktop app: a *public client* (mobile and desktop platform)
/// allowed loopback redirect URIs `http://127.0.0.1/...` and `http://localhost/...` on any port
/// (RFC 8252 §7.3).
pub const DESKTOP_CLIENT_ID: &str = "6f1c9a42-8d7e-4b3a-9c55-0e2d4f8a7b11";
/// Redirect URIs registered for the desktop client. A trailing `*` matches any path (a devtenant
/// extension, see the README's deviations); the port of loopback URIs is always ignored.
pub const DESKTOP_REDIRECT_URIS: &[&str] = &["http://127.0.0.1/*", "http://localhost/*"];

/// Application (client) ID of the approval API (guestlist-server). Entra v2 access tokens for the
/// API carry it as `aud`.
pub const API_CLIENT_ID: &str = "9b2e7c10-3f4a-4d5b-8e6f-7a8b9c0d1e2f";
/// Application ID URI of the approval API; scopes are requested as `{URI}/{scope}`.
pub const API_APP_ID_URI: &str = "api://guestlist-approvals";
/// The API's delegated permission (the `scp` claim value).
pub const API_SCOPE: &str = "Approvals.ReadWrite";
/// The API's delegated permission as a client requests it (`api://guestlist-approvals/Approvals.ReadWrite`).
pub const API_SCOPE_FULL: &str = "api://guestlist-approvals/Approvals.ReadWrite";
/// The API's app role held by approvers (the `roles` claim value).
pub const APPROVER_ROLE: &str = "Approver";
/// The API's app role for privacy and audit operations (erasure, access export, reopening a
/// denial; issue 12 "Roles", guestlist-server's `approver_auth.admin_role` default).
pub const ADMIN_ROLE: &str = "Admin";
/// The API's app role that may only read the audit export (issue 12 "Roles",
/// guestlist-server's `approver_auth.auditor_role`).
pub const AUDITOR_ROLE: &str = "Auditor";
/// Every app role the approval API defines, as its app registration's `appRoles` lists them:
/// a role assigned to a user reaches the `roles` claim only when the resource defines it.
pub const API_APP_ROLES: &[&str] = &[APPROVER_ROLE, ADMIN_ROLE, AUDITOR_ROLE];

/// Resource identifier of Microsoft Graph; Graph access tokens carry it as `aud`.
pub const GRAPH_RESOURCE: &str = "https://graph.microsoft.com";
/// Graph delegated permissions devtenant knows (requested as `https://graph.microsoft.com/{name}`).
/// The grants of issue 14 need `GroupMember.ReadWrite.All` (group members),
/// `AppRoleAssignment.ReadWrite.All` (app role assignments) and `User.ReadWrite.All` (sponsors).
pub const GRAPH_SCOPES: &[&str] = &[
    "User.Read",
    "User.Read.All",
    "User.ReadWrite.All",
    "User.Invite.All",
    "GroupMember.Read.All",
    "GroupMember.ReadWrite.All",
    "AppRoleAssignment.ReadWrite.All",
    "Application.Read.All",
    "Directory.Read.All",
];

/// Client ID of the Entra *authentication events* service principal
/// ("Azure AD Authentication Events" first-party app) that calls custom authentication
/// extensions (CONTRACTS.md §2). In devtenant it is a confidential client that may use the
/// `client_credentials` grant with scope `api://guestlist-approvals/.default`.
pub const AUTH_EVENTS_CLIENT_ID: &str = "99045fe1-7639-4a75-9d4a-577b6ca3810f";
/// Client secret of [`AUTH_EVENTS_CLIENT_ID`] in devtenant (real Entra signs these calls with its
/// own first-party credentials; there is no secret to know).
pub const AUTH_EVENTS_CLIENT_SECRET: &str = "devtenant-auth-events-secret";

/// The tenant's `b2c-extensions-app` application ID without dashes: custom user attributes are
/// named `extension_{EXTENSIONS_APP_ID}_{Name}` on Graph and in API connector claims.
pub const EXTENSIONS_APP_ID: &str = "b7e5c3a1d9f24e6a8c0b1d2e3f4a5b6c";

/// Default `--listen` address of the `devtenant` binary.
pub const LISTEN: &str = "127.0.0.1:8900";

/// Directory role template ID of *User Administrator* (may create and update users and invite
/// guests), as listed in "Microsoft Entra built-in roles".
pub const ROLE_USER_ADMINISTRATOR: &str = "fe930be7-5e62-47db-91af-98c3a49a38b1";
/// Directory role template ID of *Guest Inviter* (may invite guests only).
pub const ROLE_GUEST_INVITER: &str = "95e79109-95c0-4d8e-aee3-d01accf2d47b";
/// Template ID of the default *User* role every member holds; Entra lists it in `wids` next
/// to the assigned directory roles.
pub const ROLE_DEFAULT_USER: &str = "b79fbf4d-3ef9-4689-8143-76b194e85509";

/// Ada Lovelace: holds the approval API's `Approver` and `Admin` app roles and the User
/// Administrator directory role, so her Graph tokens can create users and invitations.
pub const ADA_UPN: &str = "ada@contoso.onmicrosoft.com";
/// Ada's object ID (`oid` claim, Graph `id`).
pub const ADA_OID: &str = "a0a0a0a0-0001-4000-8000-00000000ada1";
/// Grace Hopper: `Approver`, no directory role (Graph writes answer 403).
pub const GRACE_UPN: &str = "grace@contoso.onmicrosoft.com";
/// Grace's object ID.
pub const GRACE_OID: &str = "a0a0a0a0-0002-4000-8000-000000006ace";
/// Bob Observer: signs in but holds no `Approver` role and no directory role.
pub const BOB_UPN: &str = "bob@contoso.onmicrosoft.com";
/// Bob's object ID.
pub const BOB_OID: &str = "a0a0a0a0-0003-4000-8000-000000000b0b";
/// Katherine Johnson: holds only the approval API's `Auditor` app role (reads the audit
/// export; may not decide, erase or reopen) and no directory role.
pub const KATHERINE_UPN: &str = "katherine@contoso.onmicrosoft.com";
/// Katherine's object ID.
pub const KATHERINE_OID: &str = "a0a0a0a0-0004-4000-8000-0000000a0d17";

/// Graph write throttling: writes allowed per window per app (`azp`) and tenant
/// ("identity and access service limits": 3,000 requests per 2 min 30 s).
pub const GRAPH_WRITE_LIMIT: u32 = 3000;
/// The throttling window in seconds (150 s).
pub const GRAPH_WINDOW_SECS: u64 = 150;

/// The demo tenant's security group for approved partner guests ("Partners-Fabrikam"): the
/// target of `POST /groups/{id}/members/$ref`.
pub const PARTNERS_GROUP_ID: &str = "b0b0b0b0-0001-4000-8000-0000000fab01";
/// Display name of [`PARTNERS_GROUP_ID`].
pub const PARTNERS_GROUP_NAME: &str = "Partners-Fabrikam";
/// Object ID of the demo "Partner portal" service principal: the `resourceId` of app role
/// assignments.
pub const PORTAL_SP_ID: &str = "c0c0c0c0-0001-4000-8000-00000000a11a";
/// Application (client) ID of the partner portal (`appId` of [`PORTAL_SP_ID`]).
pub const PORTAL_APP_ID: &str = "d0d0d0d0-0001-4000-8000-0000000a99e1";
/// Display name of [`PORTAL_SP_ID`] (`resourceDisplayName` of its assignments).
pub const PORTAL_SP_NAME: &str = "Partner portal";
/// The portal's app role for guests (`appRoleId`), value [`PORTAL_ROLE_VALUE`].
pub const PORTAL_ROLE_ID: &str = "e0e0e0e0-0001-4000-8000-00000000f00d";
/// Value of [`PORTAL_ROLE_ID`] (the `roles` claim value).
pub const PORTAL_ROLE_VALUE: &str = "Partner.Read";

/// The subdomain of devtenant's external tenant (`tenant_kind = "external"`): its customer
/// authority is `https://contosocustomers.ciamlogin.com/{tid}/v2.0` and its initial domain
/// `contosocustomers.onmicrosoft.com`.
pub const EXTERNAL_SUBDOMAIN: &str = "contosocustomers";
/// Application (client) ID of the demo customer-facing application people sign up to in an
/// external tenant (the `{appId}` of an extension request's `source`).
pub const CUSTOMER_APP_ID: &str = "f0f0f0f0-0001-4000-8000-00000000c0a1";
/// Display name of [`CUSTOMER_APP_ID`].
pub const CUSTOMER_APP_NAME: &str = "Contoso partner portal (customers)";
/// The OnAttributeCollectionStart event listener of the external tenant's user flow.
pub const START_LISTENER_ID: &str = "10000000-0000-4000-8000-0000000a5701";
/// The OnAttributeCollectionSubmit event listener of the external tenant's user flow.
pub const SUBMIT_LISTENER_ID: &str = "10000000-0000-4000-8000-0000000a5702";
/// The custom authentication extension called at OnAttributeCollectionStart.
pub const START_EXTENSION_ID: &str = "20000000-0000-4000-8000-0000000e5701";
/// The custom authentication extension called at OnAttributeCollectionSubmit.
pub const SUBMIT_EXTENSION_ID: &str = "20000000-0000-4000-8000-0000000e5702";
/// Object ID of [`CUSTOMER_APP_ID`]'s service principal (`authenticationContext`'s
/// `clientServicePrincipal.id`).
pub const CUSTOMER_SP_ID: &str = "c0c0c0c0-0002-4000-8000-00000000c0a1";
