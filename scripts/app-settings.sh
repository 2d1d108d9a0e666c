# Sourced by scripts/demo.sh, scripts/demo-app.sh, scripts/e2e.sh and scripts/bench-app.sh: the
# configuration of guestlist-server and the desktop app's settings.json for devtenant's default
# tenant (guestlist_devtenant::defaults: the desktop client, the approval API's scope and app id
# URI, the extensions app) and the given ports.

# write_server_config FILE LISTEN DATABASE ISSUER [EXTRA_TOML]: guestlist-server's TOML config,
# approvers signed in by devtenant's tenant; EXTRA_TOML is appended (e.g. a [policy] table).
# ADMIN_LISTEN (env, optional) sets admin_listen (/metrics, /openapi.json; "off" for none).
write_server_config() {
  local file=$1 listen=$2 db=$3 issuer=$4 extra=${5:-}
  local admin=""
  if [ -n "${ADMIN_LISTEN:-}" ]; then admin="admin_listen = \"$ADMIN_LISTEN\""; fi
  cat >"$file" <<EOF
listen = "$listen"
database = "$db"
$admin

[approver_auth]
issuer = "$issuer"
audiences = ["9b2e7c10-3f4a-4d5b-8e6f-7a8b9c0d1e2f", "api://guestlist-approvals"]
required_scope = "Approvals.ReadWrite"
allowed_client_ids = ["6f1c9a42-8d7e-4b3a-9c55-0e2d4f8a7b11"]
EOF
  if [ -n "$extra" ]; then printf '\n%s\n' "$extra" >>"$file"; fi
}

# write_app_settings FILE ISSUER API_URL GRAPH_URL
write_app_settings() {
  local file=$1 issuer=$2 api=$3 graph=$4
  cat >"$file" <<EOF
{
  "authority": "$issuer",
  "client_id": "6f1c9a42-8d7e-4b3a-9c55-0e2d4f8a7b11",
  "api_base_url": "$api",
  "api_scope": "api://guestlist-approvals/Approvals.ReadWrite",
  "graph_base_url": "$graph",
  "graph_scopes": ["https://graph.microsoft.com/User.ReadWrite.All", "https://graph.microsoft.com/User.Invite.All", "https://graph.microsoft.com/GroupMember.ReadWrite.All", "https://graph.microsoft.com/AppRoleAssignment.ReadWrite.All"],
  "provisioning": {
    "tenant_domain": "contoso.onmicrosoft.com",
    "upn_form": "seed",
    "invite_redirect_url": "https://myapplications.microsoft.com",
    "send_invitation_message": false,
    "extensions_app_id": "b7e5c3a1d9f24e6a8c0b1d2e3f4a5b6c"
  },
  "do_not_disturb": false,
  "purge_decided_after_days": 30
}
EOF
}
