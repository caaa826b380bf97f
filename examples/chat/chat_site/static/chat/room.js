// A room's page: history from the database, live messages and presence through bolt.js.
//
// Every message carries its database id (`pk`). The page shows each pk once, catches up from the
// database after joining and whenever bolt.js reports a gap (after a server restart, say), and
// keeps sending: messages typed while offline wait in bolt.js's queue and go out on reconnect.
import { connect } from "../bolt/bolt.js";

const root = document.getElementById("room");
const list = document.getElementById("messages");
const people = document.getElementById("people");
const status = document.getElementById("status");
const notice = document.getElementById("notice");
const compose = document.getElementById("compose");
const me = root.dataset.user;

const shown = new Map();     // pk -> <li>, in pk order
const live = new Set();      // pks that arrived live: one twice would be a duplicate delivery
const names = new Map();     // user id -> username
let lastPk = 0;

// Read by the browser tests: what arrived live, and how often the same message came twice.
window.chat = { live, duplicates: 0, gaps: 0, joined: false, refused: null };

function show(message) {
  if (shown.has(message.pk)) return;
  const item = document.createElement("li");
  item.dataset.pk = message.pk;
  if (message.announcement) item.className = "announcement";
  else if (message.author && names.get(me) === message.author) item.className = "mine";
  const author = document.createElement("span");
  author.className = "author";
  author.textContent = message.announcement ? "Announcement" : message.author ?? "someone";
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = message.text;  // never HTML: text is text
  const time = document.createElement("time");
  time.dateTime = message.created;
  time.textContent = new Date(message.created).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  item.append(author, text, time);
  const later = [...shown.keys()].find((pk) => pk > message.pk);
  list.insertBefore(item, later === undefined ? null : shown.get(later));
  shown.set(message.pk, item);
  lastPk = Math.max(lastPk, message.pk);
  if (later === undefined) list.scrollTop = list.scrollHeight;
}

function say(text, kind = "") {
  notice.textContent = text;
  notice.className = `notice ${kind}`.trim();
  notice.hidden = !text;
}

async function catchUp() {
  const response = await fetch(`${root.dataset.messagesUrl}?after=${lastPk}`, { credentials: "same-origin" });
  if (!response.ok) return;
  for (const message of (await response.json()).messages) show(message);
}

async function showPeople(members) {
  const ids = [...new Set(members.map((m) => m.user).filter((id) => id !== null))];
  const unknown = ids.filter((id) => !names.has(id));
  if (unknown.length) {
    const query = unknown.map((id) => `id=${encodeURIComponent(id)}`).join("&");
    const response = await fetch(`${root.dataset.usersUrl}?${query}`, { credentials: "same-origin" });
    if (response.ok) for (const [id, name] of Object.entries(await response.json())) names.set(id, name);
  }
  people.replaceChildren(...ids.map((id) => {
    const item = document.createElement("li");
    item.textContent = names.get(id) ?? `user ${id}`;
    return item;
  }));
}

const STATES = { connecting: "connecting…", open: "live", reconnecting: "reconnecting…", closed: "offline" };
const connection = connect("/ws/chat");
connection.onState((state, detail) => {
  status.dataset.state = state;
  status.textContent = state === "reconnecting" && detail.delay !== undefined
    ? `reconnecting in ${Math.ceil(detail.delay / 1000)} s…` : STATES[state] ?? state;
  if (state === "closed" && detail.reason) say(`Disconnected: ${detail.reason}`, "error");
});

names.set(me, root.dataset.username);
for (const message of JSON.parse(document.getElementById("history").textContent)) show(message);

const room = connection.join(root.dataset.realtimeRoom, {
  onMessage(message) {
    if (live.has(message.pk)) window.chat.duplicates += 1;
    live.add(message.pk);
    show(message);
  },
  onGap() {
    window.chat.gaps += 1;
    say("You were away for a while: the messages you missed were loaded from the saved history.");
    setTimeout(() => say(""), 8000);
    catchUp();
  },
  onPresence: showPeople,
  onError(error) {
    if (error.code !== "forbidden") say(error.reason || String(error), "error");
  },
});

room.ready.then(
  () => {
    window.chat.joined = true;
    return catchUp();  // what was posted between rendering this page and joining
  },
  (error) => {
    window.chat.refused = error.code;
    say(error.code === "forbidden" ? "You are not allowed in this room." : error.reason, "error");
    compose.querySelector("input").disabled = true;
    compose.querySelector("button").disabled = true;
  },
);

compose.addEventListener("submit", (event) => {
  event.preventDefault();
  const input = compose.elements.text;
  const text = input.value.trim();
  if (!text) return;
  input.value = "";
  room.publish({ text }).catch((error) => say(`Not sent: ${error.reason || error.code}`, "error"));
});
