# Guestlist: skrivbordsappens texter utanför fönstret (aviseringar, ikonen i meddelandefältet).
# Samma meddelanden som en.ftl (src-tauri/src/messages.rs testar det).

## En ny förfrågans avisering och dess knappar.
note-request-title = Gästförfrågan: { $name }
action-approve = Godkänn
action-open = Öppna

## Många nya förfrågningar: en sammanfattning.
note-burst-title = { $count ->
    [one] { $count } ny gästförfrågan
   *[other] { $count } nya gästförfrågningar
}
note-burst-body-empty = Öppna Guestlist för att granska dem.
note-burst-body-newest = Senaste: { $mix }.
note-burst-body-all = { $mix }.

## Resultatet av ett godkännande från en avisering.
result-no-longer-pending-title = { $name } väntar inte längre
result-no-longer-pending-body = Den avgjordes i fönstret eller av en annan godkännare.
result-failed-title = Kunde inte godkänna { $name }
result-grants-failed-title = { $name }: kontot skapat, { $count ->
    [one] 1 behörighet misslyckades
   *[other] { $count } behörigheter misslyckades
}
result-grants-failed-body = Öppna Guestlist och försök igen: bara de behörigheter som saknas körs igen.
result-no-outcome = Inget resultat.
result-approved-title = { $name } godkänd
result-approved-invited = Inbjuden som gäst; beslutet är registrerat.
result-approved-existing = Det befintliga kontot återanvändes; beslutet är registrerat.
result-approved-created = Gästkonto skapat; beslutet är registrerat.
result-approved-user-flow = Godkänd; inget skrevs i katalogen: personen slutför sin registrering och Entra skapar kontot då.
result-undo-title = Godkänner { $name }
result-undo-body = Skickas om några sekunder: öppna Guestlist för att ångra.
result-offline-title = I kö — offline
result-offline-body = Godkännandet av { $name } skickas när nätverket är tillbaka.
result-conflict-title = { $name } var redan avgjord

## Ikonen i meddelandefältet.
tray-show = Visa Guestlist
tray-sync = Synkronisera nu
tray-quit = Avsluta Guestlist
tray-tooltip = { $count ->
    [0] Guestlist — inga väntande förfrågningar
    [one] Guestlist — { $count } väntande förfrågan
   *[other] Guestlist — { $count } väntande förfrågningar
}
