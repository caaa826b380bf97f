// Unit tests of bolt.js against a fake WebSocket and a fake clock (see fakes.js).
import { connect, resolveUrl, BoltError, RECONNECT_CODES, CREDENTIALS_EXPIRED } from "../static/bolt/bolt.js";
import { test, assert, equal, rejects } from "./harness.js";
import { FakeClock, fakeSockets, settle } from "./fakes.js";

/** A connection on fakes: returns {conn, sockets, clock, errors, states}. */
function setup(options = {}) {
  const fakes = fakeSockets();
  const clock = new FakeClock();
  const errors = [];
  const states = [];
  const conn = connect("/ws/rt", {
    WebSocket: fakes.FakeWebSocket,
    timers: clock,
    random: () => 0.5,
    onError: (err) => errors.push(err),
    ...options,
  });
  conn.onState((state, detail) => states.push({ state, ...detail }));
  return { conn, fakes, clock, errors, states };
}

/** Open the current socket and acknowledge every join. */
async function openAndJoin(fakes) {
  fakes.last.accept();
  await settle();
  fakes.last.replyAll("join");
  await settle();
}

// -- URLs and params ------------------------------------------------------------------------

test("a relative URL resolves against the page, ws: for http:", () => {
  const url = new URL(resolveUrl("/ws/rt"));
  equal(url.protocol, location.protocol === "https:" ? "wss:" : "ws:");
  equal(url.host, location.host);
  equal(url.pathname, "/ws/rt");
});

test("https: becomes wss:, and params become query parameters", () => {
  equal(resolveUrl("https://example.com/ws/rt", { token: "a b&c", skip: null }), "wss://example.com/ws/rt?token=a+b%26c");
  equal(resolveUrl("ws://example.com/x?v=1", { token: "t" }), "ws://example.com/x?v=1&token=t");
});

test("params and protocols reach the WebSocket; a params function is called on every attempt", async () => {
  let calls = 0;
  const { fakes, clock } = setup({ params: () => ({ token: `t${++calls}` }), protocols: ["bolt.v1"] });
  equal(new URL(fakes.last.url).searchParams.get("token"), "t1");
  equal(fakes.last.protocols, ["bolt.v1"]);
  fakes.last.drop(1006);
  await clock.advance(1000);
  equal(fakes.sockets.length, 2);
  equal(new URL(fakes.last.url).searchParams.get("token"), "t2");
});

test("protocols without the endpoint's subprotocol: closed at once with a subprotocol error, nothing dialed", async () => {
  for (const protocols of [["token.abc"], "token.abc", ["chat.v1"]]) {
    const { conn, fakes, clock, errors, states } = setup({ protocols });
    equal([conn.state, fakes.sockets.length], ["closed", 0], JSON.stringify(protocols));
    equal(errors.map((e) => [e.code, e.name]), [["subprotocol", "BoltError"]]);
    assert(errors[0].reason.includes('"bolt.v1"'), errors[0].reason);
    equal(conn.reason, errors[0].message);
    equal(states, [], "closed before a listener could subscribe: read conn.state and conn.reason");
    await clock.advance(60000);
    equal(fakes.sockets.length, 0);
  }
});

test("the subprotocol option names the endpoint's: offered beside a token and chosen, the connection opens", async () => {
  const { conn, fakes, errors } = setup({ subprotocol: "chat.v1", protocols: ["chat.v1", "token.abc"] });
  fakes.last.protocol = "chat.v1";
  fakes.last.accept();
  equal([conn.state, errors], ["open", []]);
  const plain = setup({ protocols: ["bolt.v1", "token.abc"] });
  plain.fakes.last.accept();
  equal([plain.fakes.last.protocol, plain.conn.state], ["bolt.v1", "open"]);
});

test("a handshake that chose another of the offered subprotocols closes for good with a subprotocol error", async () => {
  const { conn, fakes, clock, errors, states } = setup({ protocols: ["bolt.v1", "token.abc"] });
  const room = conn.join("r");
  fakes.last.protocol = "token.abc"; // a server that echoes the token: the browser takes it, it was offered
  fakes.last.accept();
  equal([conn.state, conn.id, fakes.last.of("join").length], ["closed", null, 0], "its hello is not read");
  equal(fakes.last.closedWith.code, 1000);
  equal(errors.map((e) => e.code), ["subprotocol"]);
  assert(conn.reason.includes('"token.abc"') && conn.reason.includes('"bolt.v1"'), conn.reason);
  equal(states.map((s) => s.state), ["closed"]);
  await rejects(room.ready, "closed");
  await clock.advance(60000);
  equal(fakes.sockets.length, 1, "not retried");
});

test("an async params function is awaited before dialing", async () => {
  const { fakes } = setup({ params: async () => ({ token: "late" }) });
  equal(fakes.sockets.length, 0);
  await settle();
  equal(fakes.sockets.length, 1);
  equal(new URL(fakes.last.url).searchParams.get("token"), "late");
});

// -- states ---------------------------------------------------------------------------------

test("states: connecting, then open after the server's hello; id and user come from it", async () => {
  const { conn, fakes, states } = setup();
  equal(conn.state, "connecting");
  fakes.last.accept({ connection: "abc.1", user: "alice", max_rooms: 5 });
  equal(conn.state, "open");
  equal([conn.id, conn.user, conn.maxRooms], ["abc.1", "alice", 5]);
  equal(states.map((s) => s.state), ["open"]);
});

test("onState returns an unsubscribe function", async () => {
  const { conn, fakes } = setup();
  const seen = [];
  const off = conn.onState((s) => seen.push(s));
  off();
  fakes.last.accept();
  equal(seen, []);
});

test("close() gives up for good: state closed, reason set, no reconnect", async () => {
  const { conn, fakes, clock, states } = setup();
  fakes.last.accept();
  conn.close();
  equal(conn.state, "closed");
  equal(conn.reason, "closed by the client");
  equal(fakes.last.closedWith.code, 1000);
  await clock.advance(60000);
  equal(fakes.sockets.length, 1);
  equal(states.map((s) => s.state), ["open", "closed"]);
});

// -- reconnect and backoff ------------------------------------------------------------------

for (const code of RECONNECT_CODES) {
  test(`close code ${code} reconnects`, async () => {
    const { conn, fakes, clock } = setup();
    fakes.last.accept();
    fakes.last.drop(code);
    equal(conn.state, "reconnecting");
    await clock.advance(1000);
    equal(fakes.sockets.length, 2);
  });
}

for (const code of [1000, 1008, 4000, 4403, 4999]) {
  test(`close code ${code} gives up, with the code and reason surfaced`, async () => {
    const { conn, fakes, clock, states } = setup();
    fakes.last.accept();
    fakes.last.drop(code, "go away");
    equal(conn.state, "closed");
    equal(conn.closeEvent.code, code);
    equal(conn.closeEvent.reason, "go away");
    assert(conn.reason.includes(String(code)), conn.reason);
    const last = states[states.length - 1];
    equal([last.state, last.code], ["closed", code]);
    await clock.advance(60000);
    equal(fakes.sockets.length, 1);
  });
}

test("reconnectOn overrides which codes reconnect", async () => {
  const { conn, fakes, clock } = setup({ reconnectOn: (code) => code === 4001 });
  fakes.last.accept();
  fakes.last.drop(4001);
  equal(conn.state, "reconnecting");
  await clock.advance(1000);
  fakes.last.accept();
  fakes.last.drop(1012);
  equal(conn.state, "closed");
});

test("a reconnectOn that calls close() leaves the connection closed", async () => {
  const { conn, fakes, clock, states } = setup({ reconnectOn: () => { conn.close(); return true; } });
  fakes.last.accept();
  fakes.last.drop(4000);
  await clock.advance(60000);
  equal([conn.state, fakes.sockets.length], ["closed", 1]);
  equal(states.map((s) => s.state), ["open", "closed"]);
});

test("full-jitter exponential backoff: delay = random() * min(max, initial * factor^attempt)", async () => {
  const randoms = [1 - 1e-9, 1 - 1e-9, 1 - 1e-9, 1 - 1e-9, 0.5];
  const { fakes, clock, states } = setup({ random: () => randoms.shift(), backoff: { initial: 100, max: 500, factor: 2 } });
  for (let i = 0; i < 5; i++) {
    fakes.last.drop(1006);
    await clock.advance(states[states.length - 1].delay);
  }
  equal(states.map((s) => s.delay), [99, 199, 399, 499, 250]);
  equal(states.map((s) => s.attempt), [1, 2, 3, 4, 5]);
  equal(states.every((s) => s.state === "reconnecting"), true);
  equal(fakes.sockets.length, 6);
});

test("the backoff starts over once a connection has stayed open for resetAfter ms", async () => {
  const { fakes, clock, states } = setup({ random: () => 1 - 1e-9, backoff: { initial: 100, max: 10000, factor: 2, resetAfter: 1000 } });
  fakes.last.drop(1006);
  await clock.advance(100);
  fakes.last.drop(1006);
  await clock.advance(200);
  fakes.last.accept();
  await clock.advance(999);
  fakes.last.drop(1006); // open, but not for long enough: the backoff goes on growing
  equal(states[states.length - 1].delay, 399);
  await clock.advance(400);
  fakes.last.accept();
  await clock.advance(1000);
  fakes.last.drop(1006);
  equal(states[states.length - 1].delay, 99);
});

test("retries bounds the consecutive attempts, then gives up", async () => {
  const { conn, fakes, clock } = setup({ retries: 2 });
  for (let i = 0; i < 3; i++) {
    fakes.last.drop(1006);
    await clock.advance(30000);
  }
  equal(fakes.sockets.length, 3);
  equal(conn.state, "closed");
  equal(conn.reason, "gave up after 2 attempts");
});

test("a socket that never says hello is abandoned after connectTimeout and retried", async () => {
  const { conn, fakes, clock } = setup({ connectTimeout: 2000 });
  await clock.advance(1999);
  equal(conn.state, "connecting");
  await clock.advance(1);
  equal(conn.state, "reconnecting");
  assert(fakes.sockets[0].closedWith !== null, "the stale socket is closed");
  await clock.advance(1000);
  equal(fakes.sockets.length, 2);
});

test("an option given as undefined takes its default", async () => {
  const unset = { reconnectOn: undefined, pingInterval: undefined, pingTimeout: undefined, queueSize: undefined,
    replyTimeout: undefined, connectTimeout: undefined, retries: undefined, tokenParam: undefined,
    backoff: { initial: undefined, max: undefined, factor: undefined, resetAfter: undefined } };
  const { conn, fakes, clock, errors } = setup(unset);
  await clock.advance(9999);
  equal(conn.state, "connecting");
  await clock.advance(1);
  equal(conn.state, "reconnecting", "connectTimeout: 10000 ms");
  await clock.advance(500);
  equal(fakes.sockets.length, 2, "backoff.initial: 500 ms (random 0.5 of 500 is 250)");
  const room = conn.join("r");
  await openAndJoin(fakes);
  fakes.last.drop(1012);
  equal(conn.state, "reconnecting", "reconnectOn: 1012 is retried");
  equal(errors, []);
  await clock.advance(1000);
  await openAndJoin(fakes);
  const p = room.publish(1);
  p.catch(() => {});
  await clock.advance(10000);
  await rejects(p, "timeout", "replyTimeout: 10000 ms");
  equal(fakes.last.of("ping").length, 0);
  await clock.advance(15000);
  equal(fakes.last.of("ping").length, 1, "pingInterval: 25000 ms");
  await clock.advance(10000);
  equal(conn.state, "reconnecting", "pingTimeout: 10000 ms");
  const queued = [];
  for (let i = 0; i < 100; i++) queued.push(room.publish(i));
  await rejects(room.publish(100), "queue_full", "queueSize: 100");
  conn.close();
  for (const q of queued) await rejects(q, "closed");
});

// -- ping -----------------------------------------------------------------------------------

test("ping every pingInterval; no frame within pingTimeout means dead: reconnect", async () => {
  const { conn, fakes, clock } = setup({ pingInterval: 1000, pingTimeout: 300 });
  fakes.last.accept();
  await clock.advance(1000);
  equal(fakes.last.of("ping").length, 1);
  fakes.last.replyAll("ping");
  await clock.advance(300);
  equal(conn.state, "open", "a ping reply keeps it open");
  await clock.advance(700);
  equal(fakes.last.of("ping").length, 2, "the next ping one interval after the previous");
  await clock.advance(300);
  equal(conn.state, "reconnecting");
  equal(conn.closeEvent.code, 1006);
  assert(conn.closeEvent.reason.includes("ping"), conn.closeEvent.reason);
  equal(fakes.sockets[0].closedWith.code, 4000);
});

test("any frame after a ping proves the socket alive", async () => {
  const { conn, fakes, clock } = setup({ pingInterval: 1000, pingTimeout: 300 });
  fakes.last.accept();
  await clock.advance(1000);
  fakes.last.push({ type: "something-new" });
  await clock.advance(300);
  equal(conn.state, "open");
});

test("frames from an abandoned socket are ignored", async () => {
  const { conn, fakes, clock } = setup({ pingInterval: 1000, pingTimeout: 300 });
  const got = [];
  conn.join("r", { onMessage: (d) => got.push(d) });
  await openAndJoin(fakes);
  await clock.advance(1300);
  const old = fakes.sockets[0];
  equal(old.onmessage, null);
  equal(conn.state, "reconnecting");
});

// -- rooms, replies, refs --------------------------------------------------------------------

test("join sends room and ref; ready resolves on the reply; messages reach onMessage", async () => {
  const { conn, fakes } = setup();
  const got = [];
  const room = conn.join("lobby", { onMessage: (data, meta) => got.push([data, meta.id]) });
  fakes.last.accept();
  const join = fakes.last.of("join")[0];
  equal([join.room, typeof join.ref, "since" in join, "presence" in join], ["lobby", "number", false, false]);
  fakes.last.replyAll("join");
  await room.ready;
  equal(room.state, "joined");
  fakes.last.push({ room: "lobby", id: 1, data: { text: "hi" } });
  fakes.last.push({ room: "lobby", data: "no id" });
  fakes.last.push({ room: "other", id: 1, data: "not ours" });
  equal(got, [[{ text: "hi" }, 1], ["no id", null]]);
});

test("replies are matched by ref, whatever their order", async () => {
  const { conn, fakes } = setup();
  const room = conn.join("r");
  await openAndJoin(fakes);
  const a = room.publish("a");
  const b = room.publish("b");
  const [pa, pb] = fakes.last.of("publish");
  equal([pa.data, pb.data, pa.room], ["a", "b", "r"]);
  assert(pa.ref !== pb.ref, "distinct refs");
  fakes.last.push({ type: "reply", ref: pb.ref, ok: true, id: 8 });
  fakes.last.push({ type: "reply", ref: 99999, ok: true });
  fakes.last.push({ type: "reply", ref: pa.ref, ok: false, error: { code: "forbidden", reason: "no" } });
  equal((await b).id, 8);
  const err = await rejects(a, "forbidden");
  assert(err instanceof BoltError, "a BoltError");
  equal(err.reason, "no");
});

test("a publish with no reply rejects with timeout after replyTimeout", async () => {
  const { conn, fakes, clock } = setup({ replyTimeout: 500 });
  const room = conn.join("r");
  await openAndJoin(fakes);
  const p = room.publish(1);
  let settled = false;
  p.catch(() => {}).finally(() => (settled = true));
  await clock.advance(499);
  equal(settled, false);
  await clock.advance(1);
  await rejects(p, "timeout");
  fakes.last.replyAll("publish"); // a late reply is ignored
});

test("a refused join rejects ready, reaches onError, and drops the room", async () => {
  const { conn, fakes } = setup();
  const roomErrors = [];
  const room = conn.join("staff", { onError: (e) => roomErrors.push(e.code) });
  const queued = room.publish("x");
  fakes.last.accept();
  const join = fakes.last.of("join")[0];
  fakes.last.push({ type: "reply", ref: join.ref, ok: false, error: { code: "forbidden", reason: "not allowed" } });
  await rejects(room.ready, "forbidden");
  await rejects(queued, "forbidden");
  equal(roomErrors, ["forbidden"]);
  equal(room.state, "refused");
  equal(conn.rooms.has("staff"), false);
  await rejects(room.publish("y"), "not_joined");
  conn.join("staff"); // may be tried again
});

/** Refuse the newest join of `room` on the current socket with `code`. */
async function refuseJoin(fakes, room, code) {
  const join = fakes.last.of("join").filter((j) => j.room === room).pop();
  fakes.last.push({ type: "reply", ref: join.ref, ok: false, error: { code, reason: "try again" } });
  await settle();
}

test("a rejoin refused unavailable keeps the room, its lastId and its publishes, and is sent again after a backoff", async () => {
  const { conn, fakes, clock, errors } = setup({ backoff: { initial: 1000 } });
  const got = [];
  const gaps = [];
  const room = conn.join("h:a", { onMessage: (d, m) => got.push(m.id), onGap: (g) => gaps.push(g) });
  await openAndJoin(fakes);
  fakes.last.push({ room: "h:a", id: 4, data: 4 });
  fakes.last.drop(1012);
  await clock.advance(1000);
  fakes.last.accept();
  const queued = room.publish("while away");
  await refuseJoin(fakes, "h:a", "unavailable"); // the server's Redis is down for a moment
  await settle();
  equal([room.state, conn.rooms.get("h:a"), room.lastId], ["joining", room, 4]);
  equal(fakes.last.of("join").length, 1);
  equal(clock.pending().includes(500), true, "random() * initial: the first backoff delay");
  await clock.advance(499);
  equal(fakes.last.of("join").length, 1);
  await clock.advance(1);
  equal(fakes.last.of("join").map((j) => j.since), [4, 4]);
  await refuseJoin(fakes, "h:a", "unavailable");
  await settle();
  await clock.advance(999); // random() * initial * factor: the ceiling grows
  equal(fakes.last.of("join").length, 2);
  await clock.advance(1);
  equal(fakes.last.of("join").length, 3);
  equal(fakes.last.of("publish").length, 0, "publishes wait for the join");
  fakes.last.push({ room: "h:a", id: 5, data: 5 }); // the replay
  fakes.last.replyAll("join");
  await settle();
  equal(room.state, "joined");
  equal(fakes.last.of("publish").map((m) => m.data), ["while away"]);
  fakes.last.replyAll("publish");
  equal((await queued).ok, true);
  equal(got, [4, 5]);
  equal([errors, gaps], [[], []]);
  // Reset by the join that went through: the next refusal waits the first delay again.
  fakes.last.drop(1012);
  await clock.advance(1000);
  fakes.last.accept();
  await refuseJoin(fakes, "h:a", "rate_limited");
  await settle();
  equal(clock.pending().includes(500), true);
  equal(room.state, "joining");
});

test("a first join refused rate_limited is retried; ready waits for it, and a room without history hears no extra gap", async () => {
  const { conn, fakes, clock, errors } = setup({ backoff: { initial: 100 } });
  const gaps = [];
  const room = conn.join("plain", { onGap: (g) => gaps.push(g) });
  let ready = false;
  room.ready.then(() => (ready = true));
  fakes.last.accept();
  await refuseJoin(fakes, "plain", "rate_limited");
  await clock.advance(100);
  equal([ready, room.state, fakes.last.of("join").length], [false, "joining", 2]);
  fakes.last.replyAll("join");
  await settle();
  equal([ready, room.state], [true, "joined"]);
  // A rejoin of a room with nothing to resume from reports its gap once, not once per attempt.
  fakes.last.drop(1012);
  await clock.advance(100);
  fakes.last.accept();
  await refuseJoin(fakes, "plain", "rate_limited");
  await clock.advance(1000);
  fakes.last.replyAll("join");
  await settle();
  equal(gaps, [{ after: null, before: null }]);
  equal(errors, []);
});

test("a join waiting to be sent again: a reconnect rejoins at once, leave() sends nothing, close() ends it", async () => {
  const { conn, fakes, clock } = setup({ backoff: { initial: 10000 } });
  const room = conn.join("a");
  const other = conn.join("b");
  fakes.last.accept();
  await refuseJoin(fakes, "a", "unavailable");
  await refuseJoin(fakes, "b", "unavailable");
  await settle();
  fakes.last.drop(1006);
  await clock.advance(5000);
  fakes.last.accept();
  equal(fakes.last.of("join").map((j) => j.room), ["a", "b"], "the reconnect's rejoins do not wait for the old delay");
  await refuseJoin(fakes, "a", "unavailable");
  await refuseJoin(fakes, "b", "unavailable");
  await settle();
  await room.leave();
  equal(fakes.last.of("leave").length, 0, "the server does not have it");
  await clock.advance(20000);
  equal(fakes.last.of("join").map((j) => j.room), ["a", "b", "b"]);
  conn.close();
  await rejects(room.ready, "left");
  await rejects(other.ready, "closed");
  equal(clock.pending().length, 0, "no timer left behind");
});

test("retries bounds the attempts of a join too; then it is refused with the last error", async () => {
  const { conn, fakes, clock, errors } = setup({ retries: 2, backoff: { initial: 100 } });
  const room = conn.join("a");
  fakes.last.accept();
  for (let i = 0; i < 3; i++) {
    await refuseJoin(fakes, "a", "unavailable");
    await clock.advance(100);
  }
  await rejects(room.ready, "unavailable");
  equal([room.state, conn.rooms.has("a"), fakes.last.of("join").length], ["refused", false, 3]);
  equal(errors.map((e) => e.code), ["unavailable"]);
});

test("permanent refusals are not retried", async () => {
  for (const code of ["forbidden", "no_history", "bad_message", "invalid_room", "too_many_rooms", "internal"]) {
    const { conn, fakes, clock } = setup({ pingInterval: 0 });
    const room = conn.join("a", { onError: () => {} });
    fakes.last.accept();
    await refuseJoin(fakes, "a", code);
    await rejects(room.ready, code);
    await clock.advance(60000);
    equal([room.state, fakes.last.of("join").length], ["refused", 1], code);
  }
});

test("lone surrogates in an outgoing message are sent as U+FFFD; pairs stay", async () => {
  const { conn, fakes } = setup();
  const room = conn.join("r");
  await openAndJoin(fakes);
  const cut = "hi 😀".slice(0, 4);
  room.publish(cut);
  room.publish({ [cut]: [cut, "😀", "\udc00x\ud800"], ok: "a\\ud83d" });
  const sent = fakes.last.of("publish").map((m) => m.data);
  equal(sent, ["hi \ufffd", { "hi \ufffd": ["hi \ufffd", "😀", "\ufffdx\ufffd"], ok: "a\\ud83d" }]);
  room.publish(JSON.parse('{"__proto__": 1, "\\udc00": 2}'));
  equal(Object.entries(fakes.last.of("publish")[2].data), [["__proto__", 1], ["\ufffd", 2]]);
});

test("joining the same room twice throws", () => {
  const { conn } = setup();
  conn.join("r");
  let threw = false;
  try {
    conn.join("r");
  } catch (err) {
    threw = true;
  }
  assert(threw, "second join throws");
});

test("leave sends leave, drops queued publishes with code left, ignores later messages", async () => {
  const { conn, fakes } = setup();
  const got = [];
  const room = conn.join("r", { onMessage: (d) => got.push(d) });
  const queued = room.publish("never");
  await settle();
  const left = room.leave();
  await rejects(queued, "left");
  await left; // not open: resolves at once
  fakes.last.accept();
  equal(fakes.last.of("join").length, 0, "a left room is not joined");
  const room2 = conn.join("s", { onMessage: (d) => got.push(d) });
  fakes.last.replyAll("join");
  await settle();
  const leaving = room2.leave();
  equal(fakes.last.of("leave")[0].room, "s");
  fakes.last.replyAll("leave");
  await leaving;
  fakes.last.push({ room: "s", id: 1, data: "late" });
  equal(got, []);
  await rejects(room2.publish(1), "left");
});

test("join, leave, join again before the reply (React StrictMode): the left room's ready rejects with left", async () => {
  const { conn, fakes } = setup();
  fakes.last.accept();
  const first = conn.join("r");
  const leaving = first.leave();
  const second = conn.join("r");
  equal(fakes.last.sent.map((m) => m.type), ["join", "leave", "join"]);
  await rejects(first.ready, "left");
  equal(first.state, "left");
  fakes.last.replyAll("join");
  fakes.last.replyAll("leave");
  await leaving;
  equal(await second.ready, second);
  equal(conn.rooms.get("r"), second);
  // Left before the connection even opened: rejected all the same.
  const early = setup();
  const room = early.conn.join("r");
  await room.leave();
  await rejects(room.ready, "left");
});

test("nothing stays pending after close(): ready of left and joining rooms, leave() itself", async () => {
  const { conn, fakes } = setup();
  fakes.last.accept();
  const left = conn.join("a");
  const leaving = left.leave();
  const joining = conn.join("b");
  const outcome = (p) => p.then(() => "resolved", (e) => e.code);
  const all = Promise.all([outcome(left.ready), outcome(joining.ready), outcome(leaving)]);
  conn.close();
  equal(await all, ["left", "closed", "resolved"]);
});

test("server errors without a ref, malformed frames, binary frames and unknown types reach onError or are ignored", async () => {
  const { conn, fakes, errors } = setup();
  const got = [];
  conn.join("r", { onMessage: (d) => got.push(d) });
  await openAndJoin(fakes);
  fakes.last.push({ type: "error", error: { code: "bad_message", reason: "a join needs a room" } });
  fakes.last.push("not json{");
  fakes.last.push("[1,2]");
  fakes.last.onmessage({ data: new ArrayBuffer(3) });
  fakes.last.push({ type: "from-the-future", room: "r", data: 1 });
  fakes.last.push({ room: "r", id: 1, data: "ok", extra: { v2: true } });
  equal(errors.map((e) => e.code), ["bad_message", "bad_json"]);
  equal(got, ["ok"]);
  equal(conn.state, "open");
});

test("an exception in a user callback is reported, and the client goes on", async () => {
  const { conn, fakes, errors } = setup();
  const got = [];
  conn.join("r", { onMessage: (d) => { got.push(d); throw new Error("app bug"); } });
  conn.onState(() => { throw new Error("listener bug"); });
  await openAndJoin(fakes);
  fakes.last.push({ room: "r", id: 1, data: 1 });
  fakes.last.push({ room: "r", id: 2, data: 2 });
  equal(got, [1, 2]);
  equal(errors.map((e) => e.message), ["listener bug", "app bug", "app bug"]);
});

test("data that is not JSON rejects with invalid_data", async () => {
  const { conn, fakes } = setup();
  const room = conn.join("r");
  await openAndJoin(fakes);
  await rejects(room.publish(undefined), "invalid_data");
  const circular = {};
  circular.self = circular;
  await rejects(room.publish(circular), "invalid_data");
  equal(fakes.last.of("publish").length, 0);
});

// -- resume ---------------------------------------------------------------------------------

test("after a reconnect every room is rejoined with since = last id; replayed duplicates are dropped", async () => {
  const { conn, fakes, clock } = setup();
  const got = { a: [], b: [] };
  conn.join("a", { onMessage: (d, m) => got.a.push(m.id) });
  conn.join("b", { onMessage: (d, m) => got.b.push(m.id) });
  await openAndJoin(fakes);
  for (const id of [1, 2, 3]) fakes.last.push({ room: "a", id, data: id });
  fakes.last.push({ room: "b", id: 10, data: 10 });
  fakes.last.drop(1012);
  await clock.advance(1000);
  fakes.last.accept();
  const joins = fakes.last.of("join");
  equal(joins.map((j) => [j.room, j.since]), [["a", 3], ["b", 10]]);
  // The replay may overlap what was delivered (and live traffic may race it): each id arrives once.
  for (const id of [2, 3, 4, 5]) fakes.last.push({ room: "a", id, data: id });
  fakes.last.replyAll("join");
  for (const id of [5, 6]) fakes.last.push({ room: "a", id, data: id });
  fakes.last.push({ room: "b", id: 10, data: 10 });
  fakes.last.push({ room: "b", id: 11, data: 11 });
  equal(got.a, [1, 2, 3, 4, 5, 6]);
  equal(got.b, [10, 11]);
});

test("a join may start from a given since", async () => {
  const { conn, fakes } = setup();
  const room = conn.join("a", { since: 41 });
  fakes.last.accept();
  equal(fakes.last.of("join")[0].since, 41);
  equal(room.lastId, 41);
});

test("since may be a string of decimal digits (as sessionStorage gives it back); anything else throws a TypeError", async () => {
  const { conn, fakes } = setup();
  const room = conn.join("a", { since: "41" });
  conn.join("b", { since: null });
  fakes.last.accept();
  equal(fakes.last.of("join").map((j) => ("since" in j ? j.since : "none")), [41, "none"]);
  equal(room.lastId, 41);
  for (const bad of ["", "4.5", "-1", " 41", "1e3", "abc", "99999999999999999999", 4.5, NaN, {}, true]) {
    let threw = null;
    try {
      conn.join("c", { since: bad });
    } catch (err) {
      threw = err;
    }
    assert(threw instanceof TypeError, `since ${JSON.stringify(bad)}: a TypeError, not ${threw}`);
    equal(conn.rooms.has("c"), false);
  }
});

test("a gap reaches onGap; the next join does not ask for what is gone", async () => {
  const { conn, fakes, clock } = setup();
  const gaps = [];
  const got = [];
  conn.join("a", { since: 5, onGap: (g) => gaps.push(g), onMessage: (d, m) => got.push(m.id) });
  await openAndJoin(fakes);
  fakes.last.push({ room: "a", gap: { after: 5, before: 12 } });
  fakes.last.push({ room: "a", id: 12, data: 12 });
  equal(gaps, [{ after: 5, before: 12 }]);
  equal(got, [12]);
  fakes.last.push({ room: "a", gap: { after: 12, before: 20 } });
  fakes.last.drop(1006);
  await clock.advance(1000);
  fakes.last.accept();
  equal(fakes.last.of("join")[0].since, 19);
});

test("a gap with before null forgets the last id: ids that started again are delivered", async () => {
  const { conn, fakes, clock } = setup();
  const gaps = [];
  const got = [];
  conn.join("a", { onGap: (g) => gaps.push(g), onMessage: (d, m) => got.push(m.id) });
  await openAndJoin(fakes);
  fakes.last.push({ room: "a", id: 30, data: 0 });
  fakes.last.drop(1012);
  await clock.advance(1000);
  fakes.last.accept();
  equal(fakes.last.of("join")[0].since, 30);
  fakes.last.push({ room: "a", gap: { after: 30, before: null } }); // the room's history was lost
  fakes.last.replyAll("join");
  fakes.last.push({ room: "a", id: 1, data: 1 });
  fakes.last.push({ room: "a", id: 2, data: 2 });
  fakes.last.push({ room: "a", id: 2, data: 2 });
  equal(gaps, [{ after: 30, before: null }]);
  equal(got, [30, 1, 2]);
});

test("rejoining a room with no id to resume from reports a gap with after and before null", async () => {
  const { conn, fakes, clock } = setup();
  const gaps = [];
  conn.join("plain", { onGap: (g) => gaps.push(g) });
  await openAndJoin(fakes);
  fakes.last.push({ room: "plain", data: "no ids here" });
  fakes.last.drop(1006);
  await clock.advance(1000);
  fakes.last.accept();
  equal("since" in fakes.last.of("join")[0], false);
  equal(gaps, [{ after: null, before: null }]);
});

test("leave() in the onGap of a rejoin is sent after the join: the room stays left", async () => {
  const { conn, fakes, clock } = setup();
  const room = conn.join("plain", { onGap: () => room.leave() });
  await openAndJoin(fakes);
  fakes.last.drop(1006);
  await clock.advance(1000);
  fakes.last.accept();
  equal(fakes.last.sent.map((m) => `${m.type}:${m.room}`), ["join:plain", "leave:plain"]);
  fakes.last.replyAll("join");
  fakes.last.replyAll("leave");
  await settle();
  equal([room.state, conn.rooms.has("plain"), conn.state], ["left", false, "open"]);
});

test("close() in the onGap of a rejoin: no other room is rejoined or hears a gap, and the connection stays closed", async () => {
  const { conn, fakes, clock, states, errors } = setup();
  const gaps = [];
  const a = conn.join("a", { onGap: () => { gaps.push("a"); conn.close(); } });
  const b = conn.join("b", { onGap: () => gaps.push("b") });
  await openAndJoin(fakes);
  fakes.last.drop(1006);
  await clock.advance(1000);
  fakes.last.accept();
  await settle();
  equal(gaps, ["a"]);
  equal(fakes.last.sent.map((m) => `${m.type}:${m.room}`), ["join:a"]);
  equal([conn.state, a.state, b.state], ["closed", "closed", "closed"]);
  equal(states.map((s) => s.state), ["open", "reconnecting", "closed"]);
  await clock.advance(60000);
  equal([fakes.sockets.length, errors], [2, []]);
});

// -- presence -------------------------------------------------------------------------------

test("presence: asked for with onPresence; full list, then diffs applied by connection", async () => {
  const { conn, fakes } = setup();
  const calls = [];
  const room = conn.join("r", { onPresence: (members, change) => calls.push([members.map((m) => m.connection), change.joined.length, change.left.length]) });
  fakes.last.accept();
  equal(fakes.last.of("join")[0].presence, true);
  const alice = { connection: "c1", user: "alice" };
  const bob = { connection: "c2", user: "bob" };
  fakes.last.push({ type: "presence", room: "r", members: [alice] });
  fakes.last.push({ type: "presence", room: "r", join: [alice], leave: [] }); // overlap: no change
  fakes.last.push({ type: "presence", room: "r", join: [bob], leave: [] });
  fakes.last.push({ type: "presence", room: "r", join: [], leave: [{ connection: "zz", user: "x" }] });
  equal(room.members, [alice, bob]);
  fakes.last.push({ type: "presence", room: "r", join: [], leave: [alice] });
  equal(room.members, [bob]);
  equal(calls, [[["c1"], 1, 0], [["c1", "c2"], 1, 0], [["c2"], 0, 1]]);
});

test("presence after a reconnect: the new full list replaces the old one", async () => {
  const { conn, fakes, clock } = setup();
  const room = conn.join("r", { onPresence: () => {} });
  await openAndJoin(fakes);
  fakes.last.push({ type: "presence", room: "r", members: [{ connection: "c1", user: "a" }, { connection: "x", user: "b" }] });
  fakes.last.drop(1006);
  await clock.advance(1000);
  fakes.last.accept();
  equal(fakes.last.of("join")[0].presence, true);
  fakes.last.push({ type: "presence", room: "r", members: [{ connection: "c2", user: "a" }] });
  equal(room.members, [{ connection: "c2", user: "a" }]);
});

test("no presence requested without onPresence", async () => {
  const { conn, fakes } = setup();
  conn.join("r");
  fakes.last.accept();
  equal("presence" in fakes.last.of("join")[0], false);
});

// -- the publish queue ----------------------------------------------------------------------

test("publishes made while not open wait, and are sent once, in order, after the room is rejoined", async () => {
  const { conn, fakes, clock } = setup();
  const room = conn.join("r");
  await openAndJoin(fakes);
  fakes.last.drop(1006);
  const results = [room.publish(1), room.publish(2)];
  await clock.advance(1000);
  fakes.last.accept();
  results.push(room.publish(3)); // open, but the rejoin is not acknowledged yet
  equal(fakes.last.of("publish").length, 0, "nothing before the join reply");
  fakes.last.replyAll("join");
  await settle();
  equal(fakes.last.of("publish").map((p) => p.data), [1, 2, 3]);
  fakes.last.replyAll("publish", { id: 7 });
  for (const r of results) equal((await r).ok, true);
  fakes.last.drop(1006);
  await clock.advance(1000);
  fakes.last.accept();
  fakes.last.replyAll("join");
  await settle();
  equal(fakes.last.of("publish").length, 0, "sent once: not again after the next reconnect");
});

test("the queue holds queueSize publishes; the next one rejects with queue_full", async () => {
  const { conn } = setup({ queueSize: 2 });
  const room = conn.join("r");
  const a = room.publish(1);
  const b = room.publish(2);
  await rejects(room.publish(3), "queue_full");
  conn.close();
  await rejects(a, "closed");
  await rejects(b, "closed");
});

test("a publish in flight when the connection drops rejects with disconnected, and is not resent", async () => {
  const { conn, fakes, clock } = setup();
  const room = conn.join("r");
  await openAndJoin(fakes);
  const p = room.publish("x");
  fakes.last.drop(1006);
  await rejects(p, "disconnected");
  await clock.advance(1000);
  await openAndJoin(fakes);
  equal(fakes.last.of("publish").length, 0);
});

test("a close the client does not retry rejects a publish and an authenticate awaiting their reply with closed", async () => {
  for (const [code, options] of [[1000, {}], [1008, {}], [CREDENTIALS_EXPIRED, { token: "t1" }], [1006, { retries: 0 }]]) {
    const { conn, fakes } = setup(options);
    const room = conn.join("r");
    await openAndJoin(fakes);
    const published = room.publish(1);
    const authenticated = conn.authenticate("t2");
    fakes.last.drop(code, "bye");
    equal(conn.state, "closed", `${code}`);
    await rejects(published, "closed", `${code}`);
    await rejects(authenticated, "closed", `${code}`);
  }
});

/** Answer the unanswered publishes on the current socket, in order: `codes[i]` refuses the i-th, null accepts it. */
async function answerPublishes(fakes, codes) {
  fakes.last._answered = fakes.last._answered || new Set();
  const open = fakes.last.of("publish").filter((m) => !fakes.last._answered.has(m.ref));
  open.forEach((m, i) => {
    fakes.last._answered.add(m.ref);
    const code = codes[i] === undefined ? null : codes[i];
    fakes.last.push(code === null ? { type: "reply", ref: m.ref, ok: true }
      : { type: "reply", ref: m.ref, ok: false, error: { code, reason: "Message rate exceeded" } });
  });
  await settle();
}

test("a publish refused rate_limited (never applied) is sent again after a backoff delay, and resolves", async () => {
  const { conn, fakes, clock, errors } = setup({ backoff: { initial: 1000 }, pingInterval: 0 });
  const room = conn.join("r");
  await openAndJoin(fakes);
  let settled = null;
  const published = room.publish("x").then((reply) => (settled = reply), (err) => (settled = err));
  await answerPublishes(fakes, ["rate_limited"]);
  equal([settled, fakes.last.of("publish").length], [null, 1], "not settled, not sent again yet");
  equal(clock.pending().includes(500), true, "random() * initial: the first backoff delay");
  await clock.advance(500);
  await answerPublishes(fakes, ["rate_limited"]);
  await clock.advance(999); // random() * initial * factor: the ceiling grows
  equal(fakes.last.of("publish").length, 2);
  await clock.advance(1);
  equal(fakes.last.of("publish").map((m) => m.data), ["x", "x", "x"]);
  await answerPublishes(fakes, [null]);
  equal((await published).ok, true);
  equal(errors, []);
});

test("a publish refused rate_limited keeps its place: its room's later publishes wait behind it", async () => {
  const { conn, fakes, clock } = setup({ backoff: { initial: 100 }, pingInterval: 0 });
  const room = conn.join("r");
  const other = conn.join("o");
  await openAndJoin(fakes);
  const outcome = (p) => p.then((reply) => reply.ok, (err) => err.code);
  const results = [1, 2, 3].map((i) => outcome(room.publish(i)));
  await answerPublishes(fakes, ["rate_limited", "rate_limited", null]); // 3 got through, 1 and 2 did not
  const later = [outcome(room.publish(4)), outcome(other.publish("o"))];
  equal(fakes.last.of("publish").map((m) => m.data), [1, 2, 3, "o"], "4 waits behind 1 and 2; another room does not");
  await clock.advance(50);
  equal(fakes.last.of("publish").map((m) => m.data), [1, 2, 3, "o", 1, 2, 4], "again in the order they were made");
  await answerPublishes(fakes, [null, null, null, null]);
  equal(await Promise.all([...results, ...later]), [true, true, true, true, true]);
});

test("retries bounds the resends of a publish refused rate_limited; then it rejects with that code", async () => {
  const { conn, fakes, clock, errors } = setup({ retries: 2, backoff: { initial: 100 }, pingInterval: 0 });
  const room = conn.join("r");
  await openAndJoin(fakes);
  const published = room.publish("x");
  for (let i = 0; i < 3; i++) {
    await answerPublishes(fakes, ["rate_limited"]);
    await clock.advance(100);
  }
  const err = await rejects(published, "rate_limited");
  equal([err.name, err.reason], ["BoltError", "Message rate exceeded"]);
  await clock.advance(60000);
  equal([fakes.last.of("publish").length, errors], [3, []]);
});

test("a publish refused unavailable (its fate unknown) rejects with the code and reason, and is never resent", async () => {
  const { conn, fakes, clock, errors } = setup({ backoff: { initial: 100 }, pingInterval: 0 });
  const room = conn.join("r");
  await openAndJoin(fakes);
  const published = room.publish("x");
  const reply = fakes.last.of("publish")[0];
  const reason = "the pub/sub backend did not confirm the message, which may still be delivered: timeout";
  fakes.last.push({ type: "reply", ref: reply.ref, ok: false, error: { code: "unavailable", reason } });
  const err = await rejects(published, "unavailable");
  equal([err.reason, err.message], [reason, `unavailable: ${reason}`]);
  await clock.advance(60000);
  equal([fakes.last.of("publish").length, errors], [1, []]);
});

test("a publish waiting to be sent again: a reconnect sends it after the rejoin, leave() and close() reject it", async () => {
  const { conn, fakes, clock } = setup({ backoff: { initial: 10000 }, pingInterval: 0 });
  const room = conn.join("r");
  const other = conn.join("o");
  await openAndJoin(fakes);
  const resent = room.publish(1);
  const left = room.publish(2);
  const closed = other.publish(3);
  await answerPublishes(fakes, ["rate_limited", "rate_limited", "rate_limited"]);
  fakes.last.drop(1006);
  await clock.advance(5000);
  fakes.last.accept();
  equal(fakes.last.of("publish").length, 0, "not before the rejoin");
  fakes.last.replyAll("join");
  await settle();
  equal(fakes.last.of("publish").map((m) => m.data), [1, 2, 3], "the reconnect does not wait out the old delay");
  await answerPublishes(fakes, [null, "rate_limited", "rate_limited"]);
  equal((await resent).ok, true);
  room.leave();
  await rejects(left, "left");
  conn.close();
  await rejects(closed, "closed");
  equal(clock.pending().length, 0, "no timer left behind");
});

test("publishing after close rejects with closed; join after close throws", async () => {
  const { conn } = setup();
  const room = conn.join("r");
  conn.close();
  await rejects(room.publish(1), "closed");
  await rejects(room.ready, "closed");
  let threw = false;
  try {
    conn.join("s");
  } catch (err) {
    threw = err.code === "closed";
  }
  assert(threw, "join after close throws a closed BoltError");
});

// -- pacing to the route's message rate limit -----------------------------------------------

/** Record when each frame is sent on the current socket (clock time). */
function timeSends(fakes, clock) {
  const ws = fakes.last;
  const times = [];
  const send = ws.send.bind(ws);
  ws.send = (text) => {
    times.push(clock.now);
    send(text);
  };
  return times;
}

/** Whether messages sent at `times` (ms) pass the server's token bucket of `rate`/s and `burst`. */
function withinLimit(times, rate, burst) {
  let tokens = burst;
  let last = 0;
  for (const t of times) {
    tokens = Math.min(burst, tokens + ((t - last) / 1000) * rate);
    last = t;
    if (tokens < 1) return false;
    tokens -= 1;
  }
  return true;
}

const LIMIT = { rate: 5, burst: 10 };

test("joins are paced to the message_limit of the hello: 11 rooms on a (5/s, burst 10) route", async () => {
  const { conn, fakes, clock } = setup();
  const rooms = [];
  for (let i = 0; i < 11; i++) rooms.push(conn.join(`r${i}`));
  const times = timeSends(fakes, clock);
  fakes.last.accept({ message_limit: LIMIT });
  equal(fakes.last.of("join").length, 9, "the burst, less one kept in reserve");
  await clock.advance(249);
  equal(fakes.last.of("join").length, 9);
  await clock.advance(1);
  equal(fakes.last.of("join").length, 10, "then one per 1 / (0.8 * rate) s");
  await clock.advance(250);
  equal(fakes.last.of("join").map((m) => m.room), rooms.map((r) => r.name), "in the order they were joined");
  fakes.last.replyAll("join");
  for (const room of rooms) equal(await room.ready, room);
  assert(withinLimit(times, LIMIT.rate, LIMIT.burst), `over the limit: ${times}`);
});

test("after a reconnect the rejoins and the queued publishes are paced; pings are counted", async () => {
  const { conn, fakes, clock } = setup({ pingInterval: 1000, pingTimeout: 500 });
  const rooms = [conn.join("a"), conn.join("b")];
  await openAndJoin(fakes);
  fakes.last.drop(1006);
  const published = [];
  for (let i = 0; i < 30; i++) published.push(rooms[i % 2].publish(i));
  await clock.advance(1000);
  const times = timeSends(fakes, clock);
  fakes.last.accept({ message_limit: LIMIT });
  equal(fakes.last.of("join").length, 2);
  fakes.last.replyAll("join");
  await settle();
  equal(fakes.last.of("publish").length, 7, "nine at once in all");
  for (let t = 0; t < 40 && fakes.last.of("publish").length < 30; t++) {
    await clock.advance(250);
    fakes.last.replyAll("ping");
    fakes.last.replyAll("publish");
  }
  equal(fakes.last.of("publish").map((m) => m.data).sort((x, y) => x - y), [...Array(30).keys()]);
  for (const room of rooms) {
    const data = fakes.last.of("publish").filter((m) => m.room === room.name).map((m) => m.data);
    equal(data, [...data].sort((x, y) => x - y), "in order within each room");
  }
  for (const p of published) equal((await p).ok, true);
  assert(fakes.last.of("ping").length > 0, "pings went out meanwhile");
  assert(withinLimit(times, LIMIT.rate, LIMIT.burst), `over the limit: ${times}`);
  equal(conn.state, "open");
});

test("publishes faster than the announced rate wait in the queue instead of going over it", async () => {
  const { conn, fakes, clock } = setup({ replyTimeout: 1000 });
  const room = conn.join("r");
  const times = timeSends(fakes, clock);
  fakes.last.accept({ message_limit: { rate: 2, burst: 3 } });
  fakes.last.replyAll("join");
  await settle();
  const published = [];
  for (let i = 0; i < 6; i++) published.push(room.publish(i));
  equal(fakes.last.of("publish").length, 1, "a burst of 3, less the reserve, less the join");
  for (let i = 0; i < 5; i++) {
    fakes.last.replyAll("publish");
    await clock.advance(625);
  }
  equal(fakes.last.of("publish").map((m) => m.data), [0, 1, 2, 3, 4, 5]);
  fakes.last.replyAll("publish");
  for (const p of published) equal((await p).ok, true, "queued time does not count against replyTimeout");
  assert(withinLimit(times, 2, 3), `over the limit: ${times}`);
});

test("a leave of a room whose join is still waiting for the pace is not sent", async () => {
  const { conn, fakes, clock } = setup();
  const rooms = [conn.join("a"), conn.join("b"), conn.join("c")];
  fakes.last.accept({ message_limit: { rate: 1, burst: 2 } });
  equal(fakes.last.of("join").map((m) => m.room), ["a"]);
  await rooms[2].leave();
  await rejects(rooms[2].ready, "left");
  await clock.advance(5000);
  equal(fakes.last.sent.map((m) => m.type + ":" + m.room), ["join:a", "join:b"]);
});

// -- direct messages -------------------------------------------------------------------------

test("messages to ~c:<connection> and ~u:<user> reach onDirect", async () => {
  const direct = [];
  const { fakes } = setup({ onDirect: (data, meta) => direct.push([data, meta.room]) });
  fakes.last.accept({ connection: "c9", user: "alice" });
  fakes.last.push({ room: "~c:c9", data: "to this tab" });
  fakes.last.push({ room: "~u:alice", data: { n: 1 } });
  fakes.last.push({ room: "not-joined", data: "ignored" });
  equal(direct, [["to this tab", "~c:c9"], [{ n: 1 }, "~u:alice"]]);
});

// -- more edges ------------------------------------------------------------------------------

test("the browser's online event cuts the backoff wait short", async () => {
  const { conn, fakes } = setup({ backoff: { initial: 60000, max: 60000 } });
  fakes.last.accept();
  fakes.last.drop(1006);
  equal(fakes.sockets.length, 1);
  window.dispatchEvent(new Event("online"));
  equal(fakes.sockets.length, 2);
  conn.close();
  window.dispatchEvent(new Event("online"));
  equal(fakes.sockets.length, 2, "not after close");
});

test("close() while reconnecting cancels the pending attempt", async () => {
  const { conn, fakes, clock } = setup();
  fakes.last.drop(1006);
  conn.close();
  await clock.advance(60000);
  equal(fakes.sockets.length, 1);
  equal(clock.pending(), [], "no timer left behind");
});

test("a refused join without a room onError goes to the connection's onError", async () => {
  const { conn, fakes, errors } = setup();
  conn.join("staff");
  fakes.last.accept();
  const ref = fakes.last.of("join")[0].ref;
  fakes.last.push({ type: "reply", ref, ok: false, error: { code: "too_many_rooms", reason: "at most 1" } });
  await settle();
  equal(errors.map((e) => [e.code, e.reason]), [["too_many_rooms", "at most 1"]]);
});

test("a join made by an onState listener on open is sent once", async () => {
  const { conn, fakes } = setup();
  conn.onState((state) => state === "open" && !conn.rooms.has("late") && conn.join("late"));
  conn.join("early");
  fakes.last.accept();
  equal(fakes.last.of("join").map((j) => j.room), ["early", "late"]);
});

test("queued publishes of a room wait for that room only", async () => {
  const { conn, fakes } = setup();
  const a = conn.join("a");
  const b = conn.join("b");
  const pa = a.publish("to a");
  const pb = b.publish("to b");
  fakes.last.accept();
  const [ja] = fakes.last.of("join");
  fakes.last.push({ type: "reply", ref: ja.ref, ok: true }); // only a is acknowledged
  await settle();
  equal(fakes.last.of("publish").map((p) => p.room), ["a"]);
  fakes.last.replyAll("join");
  await settle();
  equal(fakes.last.of("publish").map((p) => p.room), ["a", "b"]);
  fakes.last.replyAll("publish");
  await pa;
  await pb;
});

test("a pending publish and an open socket both end on close()", async () => {
  const { conn, fakes } = setup();
  const room = conn.join("r");
  await openAndJoin(fakes);
  const p = room.publish(1);
  conn.close(4001, "bye");
  await rejects(p, "closed");
  equal(fakes.last.closedWith, { code: 4001, reason: "bye" });
  equal(conn.closeEvent, { code: 4001, reason: "bye", wasClean: true });
  equal(room.state, "closed");
});

test("a params function that throws is reported and retried", async () => {
  let fail = true;
  const { conn, fakes, clock, errors } = setup({ params: () => { if (fail) throw new Error("no token"); return { token: "t" }; } });
  equal(fakes.sockets.length, 0);
  equal(conn.state, "reconnecting");
  equal(errors.map((e) => e.message), ["no token"]);
  fail = false;
  await clock.advance(1000);
  equal(fakes.sockets.length, 1);
});

// -- credentials: authenticate() and the token option ---------------------------------------------

const tokenOf = (socket) => new URL(socket.url).searchParams.get("token");

test("authenticate sends the token with a ref and resolves with the reply", async () => {
  const { conn, fakes } = setup();
  fakes.last.accept();
  const reply = conn.authenticate("t2");
  equal(fakes.last.of("auth").map((m) => m.token), ["t2"]);
  fakes.last.replyAll("auth", { expires_at: 1796163422 });
  equal((await reply).expires_at, 1796163422);
});

test("a refused token rejects with the server's code and reason; a bad argument with invalid_data", async () => {
  const { conn, fakes } = setup();
  fakes.last.accept();
  const refused = conn.authenticate("other-user");
  const [sent] = fakes.last.of("auth");
  fakes.last.push({ type: "reply", ref: sent.ref, ok: false, error: { code: "unauthorized", reason: "Token is for another user" } });
  const err = await rejects(refused, "unauthorized");
  equal(err.reason, "Token is for another user");
  await rejects(conn.authenticate(""), "invalid_data");
  await rejects(conn.authenticate(42), "invalid_data");
});

test("a token option goes in the handshake; after a reconnect the newest accepted token does", async () => {
  const { conn, fakes, clock } = setup({ token: "t1" });
  equal(tokenOf(fakes.last), "t1");
  fakes.last.accept();
  const refreshed = conn.authenticate("t2");
  fakes.last.replyAll("auth");
  await refreshed;
  const refused = conn.authenticate("bad");
  const last = fakes.last.of("auth").at(-1);
  fakes.last.push({ type: "reply", ref: last.ref, ok: false, error: { code: "unauthorized", reason: "Invalid token" } });
  await rejects(refused, "unauthorized");
  fakes.last.drop(1006);
  await clock.advance(1000);
  equal(fakes.sockets.length, 2);
  equal(tokenOf(fakes.last), "t2");
});

test("tokenParam names the query parameter, beside params", async () => {
  const { fakes } = setup({ token: "t1", tokenParam: "jwt", params: { v: "1" } });
  const url = new URL(fakes.last.url);
  equal([url.searchParams.get("jwt"), url.searchParams.get("v"), url.searchParams.get("token")], ["t1", "1", null]);
});

test("authenticate while reconnecting: the next handshake carries it, and it is sent after the hello", async () => {
  const { conn, fakes, clock } = setup({ token: "old" });
  fakes.last.accept();
  fakes.last.drop(1006);
  const first = conn.authenticate("newer");
  const second = conn.authenticate("newest");
  await clock.advance(1000);
  equal(tokenOf(fakes.last), "newest");
  fakes.last.accept();
  equal(fakes.last.of("auth").map((m) => m.token), ["newest"]);
  fakes.last.replyAll("auth", { expires_at: 5 });
  equal([(await first).expires_at, (await second).expires_at], [5, 5]);
});

test("an async token function is asked before every attempt, and 4401 reconnects with a fresh token", async () => {
  let calls = 0;
  const { conn, fakes, clock } = setup({ token: async () => `t${++calls}` });
  await settle();
  equal(tokenOf(fakes.last), "t1");
  fakes.last.accept();
  fakes.last.drop(CREDENTIALS_EXPIRED, "Credentials expired");
  equal(conn.state, "reconnecting");
  await clock.advance(1000);
  equal(tokenOf(fakes.last), "t2");
});

test("without a token function 4401 is final, and a waiting authenticate rejects with closed", async () => {
  const { conn, fakes } = setup({ token: "t1" });
  fakes.last.accept();
  fakes.last.drop(1006);
  const waiting = conn.authenticate("t2");
  conn.close();
  await rejects(waiting, "closed");
  const other = setup({ token: "t1" });
  other.fakes.last.accept();
  other.fakes.last.drop(4401, "Credentials expired");
  equal(other.conn.state, "closed");
  equal(other.conn.reason, "closed by the server (4401 Credentials expired)");
});

test("a token function that throws is reported and retried", async () => {
  let fail = true;
  const { conn, fakes, clock, errors } = setup({ token: () => { if (fail) throw new Error("no token yet"); return "t"; } });
  equal(fakes.sockets.length, 0);
  equal(conn.state, "reconnecting");
  equal(errors.map((e) => e.message), ["no token yet"]);
  equal(conn.closeEvent.reason, "token() failed");
  fail = false;
  await clock.advance(1000);
  equal(tokenOf(fakes.last), "t");
});
