/**
 * bolt.js: the browser client of bolt's room protocol, version 1 (docs/realtime-protocol.md).
 *
 * One dependency-free ES module, no build step. Usage and every option: docs/client.md.
 *
 *     import { connect } from "/static/bolt/bolt.js";
 *     const conn = connect("/ws/rt");
 *     const room = conn.join("lobby", { onMessage: (data) => console.log(data) });
 *     await room.publish({ text: "hi" });
 *
 * @module bolt
 */

/** The room protocol version this client speaks. */
export const PROTOCOL_VERSION = 1;

/** The WebSocket subprotocol an `api.realtime` endpoint accepts unless made with another (the `subprotocol` option). */
export const SUBPROTOCOL = "bolt.v1";

/** The close code of a connection whose credentials expired (docs/realtime-protocol.md#credentials). */
export const CREDENTIALS_EXPIRED = 4401;

/** Close codes after which the client reconnects by default: the server went away or asked to retry. */
export const RECONNECT_CODES = Object.freeze([1001, 1005, 1006, 1011, 1012, 1013, 1014]);

/**
 * The default `reconnectOn` policy: reconnect on the codes in RECONNECT_CODES, give up on every other
 * code (1000, 1008 policy violation, 4000-4999 application codes, ...).
 * @param {number} code
 * @returns {boolean}
 */
export function defaultReconnectOn(code) {
  return RECONNECT_CODES.includes(code);
}

/**
 * The error every rejected promise carries, and every `onError` report of the server or the client
 * (exceptions from the page's own code reach `onError` as they were thrown): `code` is one of the
 * protocol's error codes ("forbidden", "not_joined", ...) or one of the client's own
 * ("timeout", "queue_full", "disconnected", "closed", "left", "invalid_data", "bad_json", "subprotocol").
 */
export class BoltError extends Error {
  /**
   * @param {string} code
   * @param {string} reason
   */
  constructor(code, reason) {
    super(reason ? `${code}: ${reason}` : code);
    this.name = "BoltError";
    this.code = code;
    this.reason = reason || "";
  }
}

const DEFAULTS = Object.freeze({
  params: undefined,
  token: undefined,
  tokenParam: "token",
  protocols: undefined,
  subprotocol: SUBPROTOCOL,
  pingInterval: 25000,
  pingTimeout: 10000,
  connectTimeout: 10000,
  replyTimeout: 10000,
  queueSize: 100,
  retries: Infinity,
  reconnectOn: defaultReconnectOn,
  onError: undefined,
  onDirect: undefined,
  WebSocket: undefined,
  random: undefined,
  timers: undefined,
});

// Joins and publishes are paced to this share of the rate the server's hello announces, keeping one
// message of its burst in reserve: the server counts from when messages arrive, and network jitter
// can bring two of them closer together than they were sent.
const PACE_SHARE = 0.8;

const BACKOFF_DEFAULTS = Object.freeze({ initial: 500, max: 30000, factor: 2, resetAfter: 5000 });

// Join refusals that say "try again" (docs/realtime-protocol.md#errors): the room was not joined this
// time, and the join is sent again after a backoff delay instead of dropping the room.
const RETRY_JOIN_CODES = Object.freeze(["unavailable", "rate_limited"]);

// The one publish refusal that is sent again: the server answers "rate_limited" before it reads the
// message, so the room never got it. Not "unavailable": the backend may still deliver that one, and a
// resend could deliver it twice.
const RETRY_PUBLISH_CODES = Object.freeze(["rate_limited"]);

/**
 * A join's `since` as an id, or null: an integer, or a string of its decimal digits (what
 * sessionStorage gives back). Anything else throws rather than silently joining without it.
 */
function sinceOf(since) {
  if (since === undefined || since === null) return null;
  if (Number.isInteger(since)) return since;
  if (typeof since === "string" && /^[0-9]+$/.test(since) && Number.isSafeInteger(Number(since))) return Number(since);
  const shown = typeof since === "string" ? JSON.stringify(since) : typeof since;
  throw new TypeError(`since is an integer id or a string of its decimal digits, not ${shown}`);
}

/** `defaults` overridden by the options that are set: an option given as `undefined` means its default. */
function withDefaults(defaults, options) {
  const merged = { ...defaults };
  for (const [key, value] of Object.entries(options || {})) if (value !== undefined) merged[key] = value;
  return merged;
}

// A lone surrogate: half of a UTF-16 pair without its other half (a string cut inside an emoji).
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?:^|[^\uD800-\uDBFF])[\uDC00-\uDFFF]/;
// What JSON.stringify writes for one (an escape), or an older browser's raw one.
const LONE_SURROGATE_IN_JSON = /\\u[dD][89a-fA-F][0-9a-fA-F]{2}|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?:^|[^\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const SURROGATES = /[\uD800-\uDBFF][\uDC00-\uDFFF]|[\uD800-\uDFFF]/g;

/** `text` with each lone surrogate replaced by U+FFFD (String.prototype.toWellFormed where there is one). */
function wellFormed(text) {
  if (!LONE_SURROGATE.test(text)) return text;
  if (typeof text.toWellFormed === "function") return text.toWellFormed();
  return text.replace(SURROGATES, (found) => (found.length === 2 ? found : "\uFFFD"));
}

/** A JSON.stringify replacer that makes every string well-formed, keys included. */
function wellFormedReplacer(key, value) {
  if (typeof value === "string") return wellFormed(value);
  if (value && typeof value === "object" && !Array.isArray(value) && Object.keys(value).some((k) => LONE_SURROGATE.test(k))) {
    const copy = Object.create(null); // so that a key "__proto__" stays a key
    for (const [k, v] of Object.entries(value)) copy[wellFormed(k)] = v;
    return copy;
  }
  return value;
}

/**
 * `value` as the JSON text of an outgoing message, with lone surrogates replaced by U+FFFD: a browser
 * writes one as an escape ("\ud83d") that the server's strict JSON check refuses. The replacer only
 * runs when the plain text shows one.
 */
function toJson(value) {
  const text = JSON.stringify(value);
  return text !== undefined && LONE_SURROGATE_IN_JSON.test(text) ? JSON.stringify(value, wellFormedReplacer) : text;
}

const REAL_TIMERS = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (id) => clearTimeout(id),
};

/**
 * Open a connection to a room endpoint (`api.realtime(path)` on the server). It connects at once
 * and keeps itself connected until `close()` or a close code that says not to retry.
 *
 * @param {string} url  "/ws/rt" (resolved against the page, ws: or wss: after http: or https:), or "wss://host/ws/rt"
 * @param {object} [options]  see docs/client.md for every option and its default
 * @returns {Connection}
 */
export function connect(url, options = {}) {
  return new Connection(url, options);
}

/**
 * The WebSocket URL for `url` with `params` as query parameters.
 * @param {string} url
 * @param {Record<string, any>} [params]
 * @returns {string}
 */
export function resolveUrl(url, params) {
  const base = typeof location !== "undefined" ? location.href : undefined;
  const resolved = new URL(url, base);
  if (resolved.protocol === "http:") resolved.protocol = "ws:";
  else if (resolved.protocol === "https:") resolved.protocol = "wss:";
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null) resolved.searchParams.set(key, String(value));
  }
  return resolved.href;
}

/** A connection: one WebSocket at a time, replaced after each loss, carrying every joined room. */
export class Connection {
  constructor(url, options) {
    const opts = withDefaults(DEFAULTS, options);
    this.url = url;
    /** "connecting" | "open" | "reconnecting" | "closed" */
    this.state = "connecting";
    /** This connection's id in presence (from the server's hello), null until open. */
    this.id = null;
    /** The authenticated user id the server reported, or null. */
    this.user = null;
    /** How many rooms the server lets this connection join at once, null until open. */
    this.maxRooms = null;
    /** The last close of the socket: {code, reason, wasClean}, or null. */
    this.closeEvent = null;
    /** Why the connection is closed for good, once state is "closed". */
    this.reason = null;

    this._opts = opts;
    this._backoff = withDefaults(BACKOFF_DEFAULTS, opts.backoff);
    this._WebSocket = opts.WebSocket || globalThis.WebSocket;
    this._random = opts.random || Math.random;
    this._timers = opts.timers || REAL_TIMERS;
    this._rooms = new Map(); // name -> Room
    this._pending = new Map(); // ref -> {resolve, reject, timer}
    this._queue = []; // publishes waiting for their room to be joined on an open socket, in the order they were made
    this._nextPublish = 1; // the order of the next publish made
    this._listeners = new Set();
    this._nextRef = 1;
    // The newest token (a string `token` option, replaced by each accepted authenticate()), and an
    // authenticate() made while not open: {token, waiters}, sent right after the next hello.
    this._token = typeof opts.token === "string" ? opts.token : null;
    this._authWaiting = null;
    this._attempt = 0; // consecutive attempts since the last stable connection
    this._ws = null;
    this._ready = false; // the current socket has said hello
    this._heard = false; // something arrived since the last ping
    this._pace = null; // {tokens, capacity, interval}: the route's message rate limit, from the hello
    this._timer = { retry: null, connect: null, ping: null, stable: null, pace: null };
    this._onOnline = () => {
      // The browser says the network is back: try now rather than at the end of the backoff.
      if (this.state === "reconnecting" && typeof this._timer.retry !== "string" && this._timer.retry !== null) this._dial();
    };
    if (typeof window !== "undefined" && window.addEventListener) window.addEventListener("online", this._onOnline);
    this._dial();
  }

  /**
   * Call `fn(state, detail)` on every state change, and again for each new attempt while
   * "reconnecting". `detail` has `code` and `reason` (of the close that caused it), and while
   * reconnecting `attempt` and `delay` (ms until the attempt).
   * @param {(state: string, detail: object) => void} fn
   * @returns {() => void} a function that unsubscribes
   */
  onState(fn) {
    this._listeners.add(fn);
    return () => this._listeners.delete(fn);
  }

  /**
   * Join a room. Returns at once; the join is sent when the connection is open, and again with
   * `since` after every reconnect.
   * @param {string} name
   * @param {{onMessage?: Function, onGap?: Function, onPresence?: Function, onError?: Function,
   *          presence?: boolean, since?: number|string}} [handlers]
   * @returns {Room}
   */
  join(name, handlers = {}) {
    if (this.state === "closed") throw new BoltError("closed", this.reason || "the connection is closed");
    if (typeof name !== "string") throw new TypeError("a room name is a string");
    if (this._rooms.has(name)) throw new Error(`already in room ${JSON.stringify(name)}: leave() it first`);
    const room = new Room(this, name, handlers);
    this._rooms.set(name, room);
    this._drain();
    return room;
  }

  /**
   * Give the open connection a fresh token before its credentials expire (the server closes an
   * expired connection with 4401). Resolves with the server's reply ({type: "reply", ok: true,
   * expires_at}); rejects with a BoltError: "unauthorized" (the reason says why the server refused
   * it; the old credentials still hold), "invalid_data", "timeout", "disconnected", "closed".
   * While not open it is sent right after the next hello, and, for a connection made with a string
   * `token` option, the next handshake already carries it. With a `token` option, every reconnect
   * presents the newest token.
   * @param {string} token
   * @returns {Promise<object>}
   */
  authenticate(token) {
    if (this.state === "closed") return Promise.reject(new BoltError("closed", this.reason || "the connection is closed"));
    if (typeof token !== "string" || !token) return Promise.reject(new BoltError("invalid_data", "a token is a non-empty string"));
    if (this._ready) return this._sendAuth(token);
    if (typeof this._opts.token === "string") this._token = token;
    const waiting = this._authWaiting || (this._authWaiting = { token, waiters: [] });
    waiting.token = token; // only the newest is worth sending
    return new Promise((resolve, reject) => waiting.waiters.push({ resolve, reject }));
  }

  _sendAuth(token) {
    return this._request({ type: "auth", token }, this._opts.replyTimeout).then((reply) => {
      if (typeof this._opts.token === "string") this._token = token;
      return reply;
    });
  }

  /** The rooms this connection is in (or joining), by name; once closed, the rooms it had, each "closed". */
  get rooms() {
    return new Map(this._rooms);
  }

  /**
   * Close for good: no reconnect. Unsent publishes and publishes awaiting a reply reject with
   * code "closed".
   * @param {number} [code=1000]
   * @param {string} [reason]
   */
  close(code = 1000, reason = "closed by the client") {
    if (this.state === "closed") return;
    const ws = this._ws;
    this._detach();
    if (ws) {
      try {
        ws.close(code, reason);
      } catch (err) {
        ws.close();
      }
    }
    this.closeEvent = { code, reason, wasClean: true };
    this._shutdown(reason, { code, reason });
  }

  // -- the socket's life ------------------------------------------------------------------

  _dial() {
    this._clear("retry");
    if (this.state === "closed") return;
    let what = "params";
    let params = this._opts.params;
    let token;
    try {
      if (typeof params === "function") params = params();
      what = "token";
      token = typeof this._opts.token === "function" ? this._opts.token() : this._token;
    } catch (err) {
      this._dialFailed(what, err);
      return;
    }
    if ((params && typeof params.then === "function") || (token && typeof token.then === "function")) {
      // An async params() or token() (e.g. fetching a fresh token): dial once both settle.
      this._timer.retry = "params";
      const named = (value, name) => Promise.resolve(value).catch((err) => Promise.reject({ name, err }));
      Promise.all([named(params, "params"), named(token, "token")]).then(
        ([p, t]) => this._timer.retry === "params" && this._open(p, t),
        (failure) => {
          if (this._timer.retry !== "params") return;
          this._timer.retry = null;
          this._dialFailed(failure.name, failure.err);
        },
      );
      return;
    }
    this._open(params, token);
  }

  _dialFailed(what, err) {
    this._report(err);
    this._lost({ code: 1006, reason: `${what}() failed`, wasClean: false }, true);
  }

  _open(params, token) {
    this._timer.retry = null;
    if (this.state === "closed") return;
    if (typeof token === "string" && token) params = { ...(params || {}), [this._opts.tokenParam]: token };
    const { protocols, subprotocol } = this._opts;
    const offered = protocols === undefined ? [] : [].concat(protocols);
    if (offered.length && !offered.includes(subprotocol)) {
      // The endpoint answers with its own subprotocol or none, and a browser fails every handshake
      // whose answer names none of the offered ones: each attempt would look like a network loss.
      this._refuseSubprotocol(`the protocols ${JSON.stringify(offered)} do not offer the endpoint's subprotocol ` +
        `${JSON.stringify(subprotocol)}: a browser fails every handshake whose answer names none of them ` +
        `(offer it beside a token, or set the subprotocol option to the endpoint's)`);
      return;
    }
    let ws;
    try {
      ws = protocols === undefined
        ? new this._WebSocket(resolveUrl(this.url, params))
        : new this._WebSocket(resolveUrl(this.url, params), protocols);
    } catch (err) {
      // A malformed URL or protocol list: retrying cannot help.
      this._report(err);
      this._shutdown(`cannot open a WebSocket: ${err.message}`, { code: null, reason: err.message });
      return;
    }
    this._ws = ws;
    this._ready = false;
    ws.onopen = () => {
      // A server may pick any offered subprotocol, and the browser takes it: one that is not the
      // endpoint's is not speaking this protocol, and will not say hello.
      if (this._ws !== ws || !offered.length || ws.protocol === subprotocol) return;
      this._refuseSubprotocol(`the server chose the subprotocol ${JSON.stringify(ws.protocol)}, ` +
        `not the endpoint's ${JSON.stringify(subprotocol)}`, ws);
    };
    ws.onmessage = (event) => this._ws === ws && this._receive(event.data);
    ws.onclose = (event) =>
      this._ws === ws && this._lost({ code: event.code, reason: event.reason, wasClean: event.wasClean });
    ws.onerror = () => {}; // a close event follows every error; it decides what happens
    if (this._opts.connectTimeout) {
      this._timer.connect = this._timers.setTimeout(() => {
        this._timer.connect = null;
        this._abandon(ws, `no hello within ${this._opts.connectTimeout} ms`);
      }, this._opts.connectTimeout);
    }
  }

  /** Close for good on a subprotocol that cannot work (retrying cannot help), reporting why. */
  _refuseSubprotocol(reason, ws = null) {
    const err = new BoltError("subprotocol", reason);
    this._detach();
    if (ws) ws.close(1000, "subprotocol");
    this._report(err);
    if (this.state !== "closed") this._shutdown(err.message, { code: null, reason: err.message });
  }

  _hello(msg) {
    if (this._ready) return;
    this._clear("connect");
    this._ready = true;
    this.id = msg.connection ?? null;
    this.user = msg.user ?? null;
    this.maxRooms = msg.max_rooms ?? null;
    const limit = msg.message_limit;
    if (limit && limit.rate > 0 && limit.burst >= 1) {
      const capacity = Math.max(1, Math.floor(limit.burst) - 1);
      this._pace = { tokens: capacity, capacity, interval: 1000 / (limit.rate * PACE_SHARE) };
    } else {
      this._pace = null;
    }
    const ws = this._ws;
    this._timer.stable = this._timers.setTimeout(() => {
      this._timer.stable = null;
      if (this._ws === ws) this._attempt = 0; // it stayed up: the next loss starts the backoff over
    }, this._backoff.resetAfter);
    this._schedulePing();
    const waiting = this._authWaiting;
    this._authWaiting = null;
    if (waiting) {
      const sent = this._sendAuth(waiting.token);
      for (const { resolve, reject } of waiting.waiters) sent.then(resolve, reject);
    }
    // Rejoin before announcing "open", so a join() made by a state listener is not sent twice.
    this._drain();
    if (!this._ready) return; // an onGap of the rejoins closed the connection
    this._setState("open", {});
  }

  /** Give up on a socket the browser still thinks is alive; reconnect as after a network loss. */
  _abandon(ws, reason) {
    if (this._ws !== ws) return;
    this._detach();
    try {
      ws.close(4000, reason.slice(0, 120));
    } catch (err) {
      /* already closing */
    }
    this._lost({ code: 1006, reason, wasClean: false }, true);
  }

  _detach() {
    const ws = this._ws;
    if (ws) ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    this._ws = null;
    this._ready = false;
    for (const name of ["connect", "ping", "stable", "pace"]) this._clear(name);
  }

  _lost(event, always = false) {
    this._detach();
    this.closeEvent = event;
    for (const room of this._rooms.values()) {
      room._joined = false;
      room._sent = false;
      room._cancelRetry(); // the next hello rejoins it anyway
      room.state = "joining";
    }
    for (const item of this._queue) this._cancelPublishRetry(item); // sent again right after its room's rejoin
    if (this.state === "closed") return;
    // Expired credentials are worth a retry only when a token() function can give fresh ones.
    let retry = always || (event.code === CREDENTIALS_EXPIRED && typeof this._opts.token === "function");
    if (!retry) {
      try {
        retry = this._opts.reconnectOn(event.code, event.reason);
      } catch (err) {
        this._report(err);
      }
      if (this.state === "closed") return; // reconnectOn called close()
    }
    if (!retry) {
      this._shutdown(`closed by the server (${event.code}${event.reason ? " " + event.reason : ""})`, event);
    } else if (this._attempt >= this._opts.retries) {
      this._shutdown(`gave up after ${this._attempt} attempts`, event);
    } else {
      // Only a connection that goes on says "disconnected"; _shutdown rejects them with "closed".
      this._failPending("disconnected", "the connection was lost before a reply: the message may or may not have been delivered");
      const delay = this._delay(this._attempt);
      this._attempt += 1;
      this._timer.retry = this._timers.setTimeout(() => this._dial(), delay);
      this._setState("reconnecting", { code: event.code, reason: event.reason, attempt: this._attempt, delay });
    }
  }

  /** The backoff delay before attempt `n` (counted from 0): "full jitter", anywhere in [0, ceiling). */
  _delay(n) {
    const { initial, max, factor } = this._backoff;
    return Math.floor(this._random() * Math.min(max, initial * factor ** n));
  }

  _shutdown(reason, event) {
    this._detach();
    this._clear("retry");
    this.reason = reason;
    if (typeof window !== "undefined" && window.removeEventListener) window.removeEventListener("online", this._onOnline);
    this._failPending("closed", reason);
    const queued = this._queue.splice(0);
    for (const item of queued) this._reject(item, new BoltError("closed", reason));
    const waiting = this._authWaiting;
    this._authWaiting = null;
    for (const { reject } of waiting ? waiting.waiters : []) reject(new BoltError("closed", reason));
    for (const room of this._rooms.values()) room._close(reason);
    this._setState("closed", { code: event.code, reason });
  }

  _setState(state, detail) {
    this.state = state;
    for (const fn of [...this._listeners]) this._call(fn, state, detail);
  }

  _clear(name) {
    const id = this._timer[name];
    if (id !== null && id !== "params") this._timers.clearTimeout(id);
    this._timer[name] = null;
  }

  // -- pacing -----------------------------------------------------------------------------

  /**
   * Spend one of the messages the route's rate limit allows now (always true on a route without
   * one). With none left it returns false and spends nothing, unless `always`: pings, leaves and
   * auths are never held back, and the reserve the pace keeps absorbs them.
   */
  _take(always = false) {
    const pace = this._pace;
    if (!pace) return true;
    if (pace.tokens < 1 && !always) return false;
    pace.tokens = Math.max(0, pace.tokens - 1);
    if (this._timer.pace === null) this._timer.pace = this._timers.setTimeout(() => this._refill(), pace.interval);
    return true;
  }

  _refill() {
    const pace = this._pace;
    this._timer.pace = null;
    pace.tokens += 1;
    if (pace.tokens < pace.capacity) this._timer.pace = this._timers.setTimeout(() => this._refill(), pace.interval);
    this._drain();
  }

  /** Send what waits for the socket, as the pace allows: joins not sent on it yet, then queued publishes. */
  _drain() {
    if (!this._ready) return;
    for (const room of this._rooms.values()) {
      if (room._sent || room._retry !== null) continue; // a join refused for a passing reason waits its delay
      if (!this._take()) return;
      room._sendJoin();
      if (!this._ready) return; // its onGap closed the connection (a room it left is no longer in the map)
    }
    this._flush();
  }

  // -- ping -------------------------------------------------------------------------------

  _schedulePing(delay = this._opts.pingInterval) {
    if (!this._opts.pingInterval) return;
    this._timer.ping = this._timers.setTimeout(() => this._ping(), delay);
  }

  _ping() {
    const ws = this._ws;
    this._heard = false;
    this._request({ type: "ping" }, 0).catch(() => {});
    this._timer.ping = this._timers.setTimeout(() => {
      this._timer.ping = null;
      // Any frame since the ping proves the socket alive, not only the ping's own reply.
      if (!this._heard) this._abandon(ws, `no reply to ping within ${this._opts.pingTimeout} ms`);
      else this._schedulePing(Math.max(0, this._opts.pingInterval - this._opts.pingTimeout));
    }, this._opts.pingTimeout);
  }

  // -- requests and replies ---------------------------------------------------------------

  /**
   * Send `msg` with a fresh ref; the promise settles with its reply (or rejects after `timeout` ms,
   * 0 = never). `counted`: the caller took the message's place in the pace already.
   */
  _request(msg, timeout, counted = false) {
    if (!counted) this._take(true);
    const ref = this._nextRef++;
    return new Promise((resolve, reject) => {
      const entry = { resolve, reject, timer: null };
      if (timeout) {
        entry.timer = this._timers.setTimeout(() => {
          this._pending.delete(ref);
          reject(new BoltError("timeout", `no reply within ${timeout} ms`));
        }, timeout);
      }
      this._pending.set(ref, entry);
      try {
        this._ws.send(toJson({ ...msg, ref }));
      } catch (err) {
        this._settle(ref, null, new BoltError("disconnected", String(err && err.message)));
      }
    });
  }

  _settle(ref, reply, error) {
    const entry = this._pending.get(ref);
    if (!entry) return; // timed out already, or not ours
    this._pending.delete(ref);
    if (entry.timer !== null) this._timers.clearTimeout(entry.timer);
    if (error) entry.reject(error);
    else entry.resolve(reply);
  }

  _failPending(code, reason) {
    const refs = [...this._pending.keys()];
    for (const ref of refs) this._settle(ref, null, new BoltError(code, reason));
  }

  _onReply(msg) {
    if (msg.ok === true) return this._settle(msg.ref, msg, null);
    const error = msg.error && typeof msg.error === "object" ? msg.error : {};
    this._settle(msg.ref, null, new BoltError(String(error.code || "error"), String(error.reason || "")));
  }

  // -- publishes --------------------------------------------------------------------------

  _publish(room, data) {
    if (this.state === "closed") return Promise.reject(new BoltError("closed", this.reason || "the connection is closed"));
    let json;
    try {
      json = JSON.stringify(data);
    } catch (err) {
      return Promise.reject(new BoltError("invalid_data", String(err.message)));
    }
    if (json === undefined) return Promise.reject(new BoltError("invalid_data", "data must be a JSON value"));
    const ahead = this._queue.some((item) => item.room === room);
    const now = this._ready && room._joined && !ahead && this._take();
    if (!now && this._queue.length >= this._opts.queueSize) {
      return Promise.reject(new BoltError("queue_full", `${this._queue.length} publishes already wait for the connection`));
    }
    return new Promise((resolve, reject) => {
      // order: its place among the room's publishes; refusals and retry: see _sendPublish.
      const item = { room, data, resolve, reject, order: this._nextPublish++, refusals: 0, retry: null };
      if (now) this._sendPublish(item);
      else this._queue.push(item);
    });
  }

  /**
   * Send a publish (its place in the pace is taken already). One refused "rate_limited" was never
   * applied: it goes back to the queue at its place, ahead of its room's later publishes, and is sent
   * again after a backoff delay, at most `retries` times. Any other outcome settles its promise.
   */
  _sendPublish(item) {
    const { room, data } = item;
    this._request({ type: "publish", room: room.name, data }, this._opts.replyTimeout, true).then(item.resolve, (err) => {
      const current = this.state !== "closed" && this._rooms.get(room.name) === room;
      if (!RETRY_PUBLISH_CODES.includes(err.code) || !current || item.refusals >= this._opts.retries) {
        item.reject(err);
        return;
      }
      item.retry = this._timers.setTimeout(() => {
        item.retry = null;
        this._drain();
      }, this._delay(item.refusals));
      item.refusals += 1;
      const later = this._queue.findIndex((other) => other.order > item.order);
      this._queue.splice(later === -1 ? this._queue.length : later, 0, item);
    });
  }

  /**
   * Send the queued publishes whose room is joined now, in the order they were made within each room,
   * as the pace allows. One waiting out its retry delay holds back its room's later ones.
   */
  _flush() {
    if (!this._ready) return;
    const waiting = [];
    for (const item of this._queue.splice(0)) {
      if (item.retry === null && item.room._joined && !waiting.some((other) => other.room === item.room) && this._take()) {
        this._sendPublish(item);
      } else {
        waiting.push(item);
      }
    }
    this._queue.push(...waiting);
  }

  _dropQueued(room, error) {
    const keep = [];
    for (const item of this._queue.splice(0)) {
      if (item.room === room) this._reject(item, error);
      else keep.push(item);
    }
    this._queue.push(...keep);
  }

  /** Stop the retry delay of a queued publish, if it waits one. */
  _cancelPublishRetry(item) {
    if (item.retry !== null) this._timers.clearTimeout(item.retry);
    item.retry = null;
  }

  _reject(item, error) {
    this._cancelPublishRetry(item);
    item.reject(error);
  }

  // -- incoming ---------------------------------------------------------------------------

  _receive(text) {
    this._heard = true;
    if (typeof text !== "string") return; // the protocol is JSON text only
    let msg;
    try {
      msg = JSON.parse(text);
    } catch (err) {
      this._report(new BoltError("bad_json", "the server sent a frame that is not JSON"));
      return;
    }
    if (!msg || typeof msg !== "object" || Array.isArray(msg)) return;
    switch (msg.type) {
      case "hello":
        return this._hello(msg);
      case "reply":
        return this._onReply(msg);
      case "error": {
        const error = msg.error && typeof msg.error === "object" ? msg.error : {};
        return this._report(new BoltError(String(error.code || "error"), String(error.reason || "")));
      }
      case "presence": {
        const room = this._rooms.get(msg.room);
        return room && room._onPresence(msg);
      }
      case undefined: {
        if (typeof msg.room !== "string") return;
        const room = this._rooms.get(msg.room);
        if (!room) {
          // "~c:<connection>" and "~u:<user>": what the server sent to this connection or its user.
          if (msg.room.startsWith("~") && "data" in msg && this._opts.onDirect) {
            this._call(this._opts.onDirect, msg.data, { room: msg.room, id: Number.isInteger(msg.id) ? msg.id : null });
          }
          return; // otherwise a room just left, or not ours
        }
        if (msg.gap && typeof msg.gap === "object") return room._onGap(msg.gap);
        if ("data" in msg) return room._onMessage(msg);
        return;
      }
      default:
        return; // a message type of a later protocol version
    }
  }

  // -- errors -----------------------------------------------------------------------------

  /** Run a user callback; what it throws is reported, never raised into the client. */
  _call(fn, ...args) {
    try {
      fn(...args);
    } catch (err) {
      this._report(err);
    }
  }

  _report(err) {
    const handler = this._opts.onError;
    if (handler) {
      try {
        handler(err);
        return;
      } catch (inner) {
        console.error("bolt.js: onError threw", inner);
      }
    }
    console.error("bolt.js:", err);
  }
}

/** A room joined through a Connection. */
export class Room {
  constructor(connection, name, handlers) {
    /** The room's name. */
    this.name = name;
    /** The Connection it belongs to. */
    this.connection = connection;
    /** The id of the last message delivered (what the next join sends as `since`), or null. */
    this.lastId = sinceOf(handlers.since);
    /** Who is in the room: [{connection, user}], kept up to date when presence was asked for. */
    this.members = [];
    /** "joining" | "joined" | "left" | "refused" | "closed" */
    this.state = "joining";

    this._handlers = handlers;
    this._presence = Boolean(handlers.presence || handlers.onPresence);
    this._members = new Map();
    this._joined = false; // the current socket has acknowledged the join
    this._sent = false; // the join was sent on the current socket
    this._everJoined = false;
    this._retry = null; // the timer of a join to send again after a refusal that said "try again"
    this._retries = 0; // consecutive such refusals
    this._readyResolve = null;
    this._readyReject = null;
    /** Resolves once the first join is acknowledged; rejects (BoltError) if it is refused ("forbidden", ...),
     * left first ("left") or closed first ("closed"). */
    this.ready = new Promise((resolve, reject) => {
      this._readyResolve = resolve;
      this._readyReject = reject;
    });
    this.ready.catch(() => {}); // a refusal is also reported to onError; an unobserved one is not an unhandled rejection
  }

  /**
   * Publish `data` (any JSON value) to the room, the sender included. Resolves with the server's
   * reply ({type: "reply", ref, ok: true, id?}); rejects with a BoltError whose `code` is the
   * server's error code, or "timeout", "queue_full", "disconnected", "closed", "left", "invalid_data".
   * A refusal "rate_limited" (the server did not read it) is sent again after a backoff delay, up to
   * `retries` times; "unavailable" (it may still be delivered) rejects, and is never sent again.
   * @param {any} data
   * @returns {Promise<object>}
   */
  publish(data) {
    if (this.state === "left" || this.state === "refused") {
      return Promise.reject(new BoltError(this.state === "left" ? "left" : "not_joined", `room ${this.name} was ${this.state}`));
    }
    return this.connection._publish(this, data);
  }

  /**
   * Leave the room. Publishes still waiting in the queue, and `ready` if the join was not acknowledged
   * yet, reject with code "left". Resolves once the server has confirmed, or at once when not
   * connected (the server forgets the room with the socket).
   * @returns {Promise<void>}
   */
  leave() {
    if (this.state === "left" || this.state === "closed" || this.state === "refused") return Promise.resolve();
    const conn = this.connection;
    this._forget("left", new BoltError("left", `left room ${this.name}`));
    if (!conn._ready || !this._sent) return Promise.resolve(); // the server never heard of it on this socket
    return conn._request({ type: "leave", room: this.name }, conn._opts.replyTimeout).then(
      () => undefined,
      () => undefined,
    );
  }

  /** Drop the room from its connection ("left" or "refused"): its queued publishes and, unless it
   * was acknowledged already, its `ready` reject with `error`. */
  _forget(state, error) {
    const conn = this.connection;
    this.state = state;
    this._readyReject(error);
    this._joined = false;
    this._cancelRetry();
    if (conn._rooms.get(this.name) === this) conn._rooms.delete(this.name);
    conn._dropQueued(this, error);
    this._members.clear();
    this.members = [];
  }

  _close(reason) {
    this._joined = false;
    this._cancelRetry();
    this.state = "closed";
    this._members.clear();
    this.members = [];
    this._readyReject(new BoltError("closed", reason));
  }

  _cancelRetry() {
    if (this._retry !== null) this.connection._timers.clearTimeout(this._retry);
    this._retry = null;
  }

  _sendJoin() {
    const conn = this.connection;
    this._sent = true;
    const msg = { type: "join", room: this.name };
    if (this.lastId !== null) msg.since = this.lastId;
    if (this._presence) msg.presence = true;
    conn._request(msg, 0, true).then(
      () => {
        if (conn._rooms.get(this.name) !== this) return;
        this._joined = true;
        this._everJoined = true;
        this._retries = 0;
        this.state = "joined";
        this._readyResolve(this);
        conn._flush();
      },
      (err) => {
        if (err.code === "disconnected" || err.code === "closed" || conn._rooms.get(this.name) !== this) return;
        if (RETRY_JOIN_CODES.includes(err.code) && this._retries < conn._opts.retries) {
          // Not joined this time, for a passing reason (the server's backend is away for a moment,
          // or the route's message rate): the room keeps its place, its lastId and its queued
          // publishes, and the join goes again after a backoff delay, paced like any other.
          this._sent = false;
          this._retry = conn._timers.setTimeout(() => {
            this._retry = null;
            conn._drain();
          }, conn._delay(this._retries));
          this._retries += 1;
          return;
        }
        // The server refused the room (forbidden, too_many_rooms, invalid_room, no_history, ...).
        this._forget("refused", err);
        if (this._handlers.onError) conn._call(this._handlers.onError, err);
        else conn._report(err);
      },
    );
    if (this._everJoined && this.lastId === null && this._retries === 0) {
      // Nothing to resume from (no id seen yet, or a room without history): what was published
      // while away cannot be replayed, so say so before any new message arrives (once, not again
      // for a join sent again after a refusal that said "try again"). Only once the join is sent:
      // a leave() in onGap must reach the server after it, or the server would keep the room.
      this._emit("onGap", { after: null, before: null });
    }
  }

  _onMessage(msg) {
    const id = Number.isInteger(msg.id) ? msg.id : null;
    if (id !== null) {
      if (this.lastId !== null && id <= this.lastId) return; // already delivered (replay overlap)
      this.lastId = id;
    }
    this._emit("onMessage", msg.data, { room: this.name, id });
  }

  _onGap(gap) {
    const after = Number.isInteger(gap.after) ? gap.after : null;
    const before = Number.isInteger(gap.before) ? gap.before : null;
    if (before === null) {
      // The server does not know where the loss ends (an outage, or a lost history whose new ids
      // began below this one after the server's clock stepped back): the next id that arrives
      // becomes the new baseline.
      this.lastId = null;
    } else if (this.lastId === null || before - 1 > this.lastId) {
      this.lastId = before - 1; // ids up to before - 1 are gone: do not ask for them again
    }
    this._emit("onGap", { after, before });
  }

  _onPresence(msg) {
    const valid = (m) => m && typeof m === "object" && typeof m.connection === "string";
    const previous = this._members;
    const joined = [];
    const left = [];
    if (Array.isArray(msg.members)) {
      // A full list (after every join, so also after a reconnect) replaces what we had.
      const next = new Map(msg.members.filter(valid).map((m) => [m.connection, m]));
      for (const [id, m] of next) if (!previous.has(id)) joined.push(m);
      for (const [id, m] of previous) if (!next.has(id)) left.push(m);
      this._members = next;
    } else {
      for (const m of Array.isArray(msg.join) ? msg.join.filter(valid) : []) {
        if (!previous.has(m.connection)) joined.push(m);
        previous.set(m.connection, m);
      }
      for (const m of Array.isArray(msg.leave) ? msg.leave.filter(valid) : []) {
        if (previous.has(m.connection)) left.push(previous.get(m.connection));
        previous.delete(m.connection);
      }
      if (!joined.length && !left.length) return; // an overlap with the full list: nothing changed
    }
    this.members = [...this._members.values()];
    this._emit("onPresence", this.members, { joined, left });
  }

  _emit(name, ...args) {
    const fn = this._handlers[name];
    if (fn) this.connection._call(fn, ...args);
  }
}
