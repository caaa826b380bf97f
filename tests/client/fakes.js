// Test doubles for bolt.js: a WebSocket whose server side the test plays, and a clock the test
// advances by hand, so reconnects, backoff and timeouts run deterministically and at once.

export class FakeClock {
  constructor() {
    this.now = 0;
    this._timers = new Map();
    this._next = 1;
    this.setTimeout = (fn, ms) => {
      const id = this._next++;
      this._timers.set(id, { at: this.now + Math.max(0, ms || 0), fn, id });
      return id;
    };
    this.clearTimeout = (id) => {
      this._timers.delete(id);
    };
  }

  /** Delays of the timers that are pending now, soonest first. */
  pending() {
    return [...this._timers.values()].sort((a, b) => a.at - b.at || a.id - b.id).map((t) => t.at - this.now);
  }

  /** Move time forward by `ms`, firing due timers in order (and the promise callbacks they cause). */
  async advance(ms) {
    const end = this.now + ms;
    for (;;) {
      const due = [...this._timers.values()].filter((t) => t.at <= end).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!due) break;
      this._timers.delete(due.id);
      this.now = due.at;
      due.fn();
      await settle();
    }
    this.now = end;
    await settle();
  }
}

/** Let pending promise callbacks run. */
export async function settle() {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

/** A fake WebSocket class; each test gets its own through fakeSockets(). */
export function fakeSockets() {
  const sockets = [];
  class FakeWebSocket {
    static CONNECTING = 0;
    static OPEN = 1;
    static CLOSING = 2;
    static CLOSED = 3;

    constructor(url, protocols) {
      this.url = url;
      this.protocols = protocols;
      this.protocol = ""; // the subprotocol the server chose: set it before accept() to choose another
      this.readyState = 0;
      this.sent = [];
      this.closedWith = null;
      this.onopen = this.onmessage = this.onclose = this.onerror = null;
      sockets.push(this);
    }

    send(text) {
      if (this.readyState !== 1) throw new Error("send on a socket that is not open");
      this.sent.push(JSON.parse(text));
    }

    close(code, reason) {
      this.closedWith = { code, reason };
      this.readyState = 3;
    }

    // -- the server's side, played by the test --

    /** Accept (choosing "bolt.v1" when it was offered, as the endpoint does) and say hello. */
    accept(hello = {}) {
      if (!this.protocol && [].concat(this.protocols || []).includes("bolt.v1")) this.protocol = "bolt.v1";
      this.readyState = 1;
      if (this.onopen) this.onopen({});
      this.push({ type: "hello", version: 1, connection: `c${sockets.indexOf(this) + 1}`, user: null, max_rooms: 32, ...hello });
    }

    push(message) {
      if (this.onmessage) this.onmessage({ data: typeof message === "string" ? message : JSON.stringify(message) });
    }

    drop(code = 1006, reason = "") {
      this.readyState = 3;
      if (this.onclose) this.onclose({ code, reason, wasClean: code !== 1006 });
    }

    /** Messages the client sent of one type. */
    of(type) {
      return this.sent.filter((m) => m.type === type);
    }

    /** Reply ok to every request of `type` not answered yet. */
    replyAll(type, extra = {}) {
      this._answered = this._answered || new Set();
      for (const m of this.of(type)) {
        if (this._answered.has(m.ref)) continue;
        this._answered.add(m.ref);
        this.push({ type: "reply", ref: m.ref, ok: true, ...extra });
      }
    }
  }
  return { FakeWebSocket, sockets, get last() { return sockets[sockets.length - 1]; } };
}
