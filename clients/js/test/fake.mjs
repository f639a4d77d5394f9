// A fake WebSocket for the unit tests: records what the client sends and lets the
// test open it, deliver frames (JSON text or binary) and close it.
export const sockets = [];

export class FakeWS {
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    sockets.push(this);
  }
  send(s) { this.sent.push(JSON.parse(s)); }
  close(code) { this.readyState = 3; this.onclose?.({ code }); }
  open() { this.readyState = 1; this.onopen(); }
  recv(m) { this.onmessage({ data: JSON.stringify(m) }); }
  recvBinary(bytes) { this.onmessage({ data: bytes }); }
  closeWith(code) { this.readyState = 3; this.onclose({ code }); }
}

/** Waits until `cond()` holds, polling; fails after `ms`. */
export async function until(cond, what, ms = 5000) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** A JWT (unsigned: the client never verifies) whose payload is `claims`. */
export function jwt(claims) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}.c2ln`;
}
