// What every admin page shares: the bearer token (kept in sessionStorage only; also accepted once as
// #token=..., a fragment never sent to the server), the login panel, JSON calls to the admin API and a tiny DOM
// builder. Each page script defines LOGIN_TEXT = {refused, disabled} in its own language.
"use strict";

const TOKEN_KEY = "djobea-admin-token";
const $ = (id) => document.getElementById(id);

function takeTokenFromFragment() {
  const match = /(?:^#|&)token=([^&]+)/.exec(window.location.hash);
  if (match) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
    history.replaceState(null, "", window.location.pathname + window.location.search);
  }
}

function token() { return sessionStorage.getItem(TOKEN_KEY); }

function showLogin(text) {
  $("login").hidden = false;
  $("content").hidden = true;
  if (text) $("login-message").textContent = text;
}

async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: { "Authorization": "Bearer " + token(), "Content-Type": "application/json" },
  });
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (response.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin(LOGIN_TEXT.refused);
    throw new Error("unauthorized");
  }
  if (response.status === 403) {
    showLogin((body && body.detail) || LOGIN_TEXT.disabled);
    throw new Error("forbidden");
  }
  if (!response.ok) throw new Error((body && body.detail) || ("HTTP " + response.status));
  return body;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value; else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}
