# Guestlist desktop: the texts the shell shows outside the window (OS notifications, tray).
# English is the reference catalogue: every message here is in fr.ftl and sv.ftl too
# (src-tauri/src/messages.rs tests it). Variables: $name (a person's display name), $count
# (a number), $mix ("2 Google, 1 Email OTP").

## A new request's notification and its buttons.
note-request-title = Guest request: { $name }
action-approve = Approve
action-open = Open

## A burst of new requests: one summary.
note-burst-title = { $count } new guest requests
note-burst-body-empty = Open Guestlist to review them.
note-burst-body-newest = Newest: { $mix }.
note-burst-body-all = { $mix }.

## The result of an approval made from a notification.
result-no-longer-pending-title = { $name } is no longer pending
result-no-longer-pending-body = It was decided in the window or by another approver.
result-failed-title = Could not approve { $name }
result-grants-failed-title = { $name }: account created, { $count ->
    [one] 1 grant failed
   *[other] { $count } grants failed
}
result-grants-failed-body = Open Guestlist and Retry: only the missing grants run again.
result-no-outcome = No outcome.
result-approved-title = Approved { $name }
result-approved-invited = Invited as a guest; the decision is recorded.
result-approved-existing = The existing account was reused; the decision is recorded.
result-approved-created = Guest account created; the decision is recorded.
result-approved-user-flow = Approved; nothing was written to the directory: the person finishes their sign-up and Entra creates the account then.
result-undo-title = Approving { $name }
result-undo-body = Sent in a few seconds: open Guestlist to undo.
result-offline-title = Queued — offline
result-offline-body = The approval of { $name } is sent when the network is back.
result-conflict-title = { $name } was already decided

## The tray icon.
tray-show = Show Guestlist
tray-sync = Sync now
tray-quit = Quit Guestlist
tray-tooltip = { $count ->
    [0] Guestlist — no pending requests
    [one] Guestlist — { $count } pending request
   *[other] Guestlist — { $count } pending requests
}
