// A tiny test harness: test(name, fn) registers, run() runs them one after another and returns
// [{name, ok, message}]. No dependencies, so the page needs nothing but a static file server.
const tests = [];

export function test(name, fn) {
  tests.push({ name, fn });
}

export class AssertionError extends Error {}

function show(value) {
  try {
    return JSON.stringify(value);
  } catch (err) {
    return String(value);
  }
}

export function assert(condition, message = "assertion failed") {
  if (!condition) throw new AssertionError(message);
}

export function equal(actual, expected, message = "") {
  if (show(actual) !== show(expected)) {
    throw new AssertionError(`${message ? message + ": " : ""}expected ${show(expected)}, got ${show(actual)}`);
  }
}

export async function rejects(promise, code, message = "") {
  try {
    await promise;
  } catch (err) {
    if (code !== undefined && err.code !== code) {
      throw new AssertionError(`${message ? message + ": " : ""}expected rejection ${code}, got ${err.code} (${err.message})`);
    }
    return err;
  }
  throw new AssertionError(`${message ? message + ": " : ""}expected a rejection with ${code}, it resolved`);
}

export async function run({ timeout = 5000 } = {}) {
  const results = [];
  for (const { name, fn } of tests) {
    let timer;
    try {
      await Promise.race([
        fn(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new AssertionError(`timed out after ${timeout} ms`)), timeout);
        }),
      ]);
      results.push({ name, ok: true, message: "" });
    } catch (err) {
      results.push({ name, ok: false, message: `${err && err.stack ? err.stack : err}` });
    } finally {
      clearTimeout(timer);
    }
  }
  return results;
}
