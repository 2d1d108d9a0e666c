# Guestlist : textes du bureau hors de la fenêtre (notifications, zone de notification).
# Mêmes messages que en.ftl (vérifié par src-tauri/src/messages.rs).

## Notification d'une nouvelle demande et ses boutons.
note-request-title = Demande d’invité : { $name }
action-approve = Approuver
action-open = Ouvrir

## Une rafale de nouvelles demandes : un résumé.
note-burst-title = { $count ->
    [one] { $count } nouvelle demande d’invité
   *[other] { $count } nouvelles demandes d’invité
}
note-burst-body-empty = Ouvrez Guestlist pour les examiner.
note-burst-body-newest = Les plus récentes : { $mix }.
note-burst-body-all = { $mix }.

## Résultat d'une approbation faite depuis une notification.
result-no-longer-pending-title = { $name } n’est plus en attente
result-no-longer-pending-body = La demande a été traitée dans la fenêtre ou par un autre approbateur.
result-failed-title = Impossible d’approuver { $name }
result-grants-failed-title = { $name } : compte créé, { $count ->
    [one] 1 accès en échec
   *[other] { $count } accès en échec
}
result-grants-failed-body = Ouvrez Guestlist et réessayez : seuls les accès manquants sont relancés.
result-no-outcome = Aucun résultat.
result-approved-title = { $name } approuvé(e)
result-approved-invited = Invité(e) comme invité ; la décision est enregistrée.
result-approved-existing = Le compte existant a été réutilisé ; la décision est enregistrée.
result-approved-created = Compte invité créé ; la décision est enregistrée.
result-approved-user-flow = Approuvé ; rien n’a été écrit dans l’annuaire : la personne termine son inscription et Entra crée alors le compte.
result-undo-title = Approbation de { $name }
result-undo-body = Envoi dans quelques secondes : ouvrez Guestlist pour annuler.
result-offline-title = En file d’attente — hors ligne
result-offline-body = L’approbation de { $name } sera envoyée au retour du réseau.
result-conflict-title = { $name } a déjà été traité(e)

## Icône de la zone de notification.
tray-show = Afficher Guestlist
tray-sync = Synchroniser
tray-quit = Quitter Guestlist
tray-tooltip = { $count ->
    [0] Guestlist — aucune demande en attente
    [one] Guestlist — { $count } demande en attente
   *[other] Guestlist — { $count } demandes en attente
}
