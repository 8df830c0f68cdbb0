// The "Demandes" page: reads /api/requests (filters, pages) and /api/requests/<id> (the request with its
// conversation, offers and dispatch events) with the admin bearer token, kept in sessionStorage like the
// providers page (also accepted once as #token=..., a fragment never sent to the server). No CDN, no library.
"use strict";

const STATUS = {
  collecting: "brouillon", awaiting_confirmation: "à confirmer", confirmed: "confirmée", assigned: "assignée",
  in_progress: "en cours", done: "terminée", cancelled: "annulée",
};
const LOGIN_TEXT = {
  refused: "Ce jeton a été refusé. Entrez le jeton admin (ADMIN_API_TOKEN).",
  disabled: "L'API admin est désactivée sur ce serveur.",
};
let nextCursor = null;

function when(epoch) {
  if (epoch === null || epoch === undefined) return "–";
  return new Date(epoch * 1000).toISOString().replace("T", " ").slice(0, 16);
}

function filters() {
  const query = new URLSearchParams();
  for (const name of ["status", "service_type", "quartier"]) {
    const value = $(name).value.trim();
    if (value) query.set(name, value);
  }
  return query;
}

function row(r) {
  const artisan = r.artisan ? r.artisan.name + " (" + r.artisan.whatsapp + ")" : "–";
  const tr = el("tr", { "data-id": r.id },
    el("td", {}, r.id), el("td", {}, when(r.created_at)), el("td", {}, STATUS[r.status] || r.status),
    el("td", {}, r.service_type || "–"), el("td", {}, r.quartier || r.location || "–"), el("td", {}, r.customer),
    el("td", {}, artisan), el("td", {}, r.dispatch_state || "–"));
  tr.addEventListener("click", () => open(r.id, tr));
  return tr;
}

async function load(more) {
  const query = filters();
  if (more && nextCursor) query.set("cursor", nextCursor);
  const page = await api("/api/requests?" + query.toString());
  const body = $("requests").tBodies[0];
  if (!more) body.replaceChildren();
  for (const r of page.requests) body.append(row(r));
  if (!body.children.length) body.append(el("tr", {}, el("td", { colspan: "8" }, "Aucune demande.")));
  nextCursor = page.next;
  $("more").hidden = !nextCursor;
  $("login").hidden = true;
  $("content").hidden = false;
  $("message").textContent = "";
  document.body.dataset.loaded = "true";
}

async function downloadCsv(event) {
  event.preventDefault();
  const response = await fetch("/api/requests.csv?" + filters().toString(),
    { headers: { "Authorization": "Bearer " + token() } });
  if (!response.ok) { $("message").textContent = "CSV : HTTP " + response.status; return; }
  const link = el("a", { href: URL.createObjectURL(await response.blob()), download: "demandes.csv" });
  link.click();
}

function facts(pairs) {
  const dl = el("dl");
  for (const [label, value] of pairs) dl.append(el("dt", {}, label), el("dd", {}, value ?? "–"));
  return dl;
}

async function open(id, tr) {
  for (const selected of document.querySelectorAll("tr.selected")) selected.classList.remove("selected");
  if (tr) tr.classList.add("selected");
  const r = await api("/api/requests/" + encodeURIComponent(id));
  const detail = $("detail");
  const artisan = r.artisan ? r.artisan.name + " (" + r.artisan.whatsapp + ")" : "–";
  const conversation = el("div", { id: "conversation" });
  for (const m of r.conversation) {
    conversation.append(el("div", { class: "turn turn-" + m.role, "data-role": m.role }, m.content));
  }
  const offers = el("ul", { id: "offers" });
  for (const o of r.offers) {
    offers.append(el("li", {}, o.artisan_name + " (lot " + o.batch + ") : " + o.status + (o.template ? ", modèle" : "")));
  }
  const events = el("ul", { id: "events" });
  for (const e of r.events) {
    events.append(el("li", {}, when(e.at) + " · " + e.kind + (e.to_status ? " → " + e.to_status : "")
      + (e.note ? " · " + e.note : "") + (e.actor ? " (" + e.actor + ")" : "")));
  }
  detail.replaceChildren(
    el("h2", {}, "Demande n°" + r.id + " · " + (STATUS[r.status] || r.status)),
    facts([["Métier", r.service_type], ["Lieu", r.location], ["Quartier", r.quartier], ["Problème", r.description],
      ["Urgence", r.urgency], ["Client", r.customer], ["Langue", r.language], ["Artisan", artisan],
      ["Dispatch", r.dispatch ? r.dispatch.state + " (lot " + r.dispatch.batch + ")" : "–"]]),
    el("h3", {}, "Conversation"), conversation,
    el("h3", {}, "Offres"), offers,
    el("h3", {}, "Événements"), events);
  detail.hidden = false;
  detail.dataset.request = String(r.id);
}

function report(error) {
  if (error.message !== "unauthorized" && error.message !== "forbidden") $("message").textContent = error.message;
}

function start() {
  takeTokenFromFragment();
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token").value);
    load(false).catch(report);
  });
  $("filters").addEventListener("submit", (event) => { event.preventDefault(); load(false).catch(report); });
  $("more").addEventListener("click", () => load(true).catch(report));
  $("csv").addEventListener("click", (event) => downloadCsv(event).catch(report));
  $("forget-token").addEventListener("click", () => { sessionStorage.removeItem(TOKEN_KEY); showLogin(); });
  if (!token()) { showLogin(); return; }
  const wanted = /(?:^\?|&)request=(\d+)/.exec(window.location.search);
  load(false).then(() => (wanted ? open(wanted[1]) : null)).catch(report);
}

start();
