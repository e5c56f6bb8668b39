// Interop peer: the `ws` package as a client of an asgiws server.
// Usage: node interop_client.js SCENARIO URL PLAN_JSON_FILE
// Prints one JSON line with what happened; exits 0 unless the peer itself broke.
//
// Scenarios:
//   echo      send every message of the plan (text, or base64 binary), then one
//             text message in fragments; compare each echo with what was sent;
//             close with the plan's code and reason.
//   subprotocol  offer the plan's protocols; report the one the server chose and
//             the response headers.
//   refuse    report the HTTP status, headers and body of a refused handshake.
//   server-close  wait for the server's close frame; report its code and reason.
//
// The plan: {messages: [{text} | {binary}], fragments: [str], close: {code, reason},
//            perMessageDeflate: false | true | {ws's perMessageDeflate options},
//            protocols: [str]}
const crypto = require("crypto");
const fs = require("fs");
const WebSocket = require("ws");

const [scenario, url, planFile] = process.argv.slice(2);
const plan = JSON.parse(fs.readFileSync(planFile, "utf8"));
const TIMEOUT_MS = 20000;
const timer = setTimeout(() => finish({ error: "timeout" }, 2), TIMEOUT_MS);

let finished = false;

function finish(report, exitCode = 0) {
  // Only the first outcome counts: an error is followed by a close event.
  if (finished) return;
  finished = true;
  clearTimeout(timer);
  process.stdout.write(JSON.stringify(report) + "\n", () => process.exit(exitCode));
}

let responseHeaders = null;

function connect() {
  const ws = new WebSocket(url, plan.protocols || [], {
    perMessageDeflate: plan.perMessageDeflate ?? false,
  });
  ws.on("upgrade", (response) => { responseHeaders = response.headers; });
  return ws;
}

function closeReport(ws, code, reason) {
  return {
    // ws.extensions holds only the names: the negotiated parameters are in the header.
    extensions: (responseHeaders || {})["sec-websocket-extensions"] || "",
    headers: responseHeaders,
    protocol: ws.protocol,
    code,
    reason: reason.toString(),
  };
}

function echo() {
  const sent = plan.messages.map((m) =>
    m.text !== undefined ? { text: m.text } : { binary: Buffer.from(m.binary, "base64") });
  const expected = sent.length + 1; // and the fragmented one
  const ws = connect();
  const digest = crypto.createHash("sha256");
  const mismatches = [];
  let received = 0;
  let bytes = 0;
  let fragmentedEcho = null;

  ws.on("open", () => {
    for (const m of sent) ws.send(m.text !== undefined ? m.text : m.binary);
    // One text message in several frames (FIN clear on all but the last);
    // a fragment may end in the middle of a UTF-8 character.
    const whole = Buffer.from(plan.fragments.join(""), "utf8");
    const step = Math.max(1, Math.ceil(whole.length / plan.fragments.length));
    for (let at = 0; at < whole.length; at += step) {
      const last = at + step >= whole.length;
      ws.send(whole.subarray(at, at + step), { binary: false, fin: last });
    }
  });
  ws.on("message", (data, isBinary) => {
    const index = received++;
    if (index === sent.length) {
      fragmentedEcho = isBinary ? null : data.toString("utf8");
    } else {
      const want = sent[index];
      const payload = isBinary ? data : Buffer.from(data);
      const same = want.text !== undefined
        ? !isBinary && payload.equals(Buffer.from(want.text, "utf8"))
        : isBinary && payload.equals(want.binary);
      if (!same && mismatches.length < 10) mismatches.push(index);
      digest.update(isBinary ? "B" : "T");
      const length = Buffer.alloc(4);
      length.writeUInt32BE(payload.length);
      digest.update(length);
      digest.update(payload);
      bytes += payload.length;
    }
    if (received === expected) ws.close(plan.close.code, plan.close.reason);
  });
  ws.on("close", (code, reason) => finish({
    ...closeReport(ws, code, reason),
    received: Math.min(received, sent.length),
    bytes,
    mismatches,
    digest: digest.digest("hex"),
    fragmentedEcho,
  }));
  ws.on("error", (err) => finish({ error: String(err) }, 1));
}

function subprotocol() {
  const ws = connect();
  ws.on("open", () => ws.close(1000));
  ws.on("close", (code, reason) => finish(closeReport(ws, code, reason)));
  ws.on("error", (err) => finish({ error: String(err) }, 1));
}

function refuse() {
  const ws = connect();
  ws.on("unexpected-response", (request, response) => {
    let body = "";
    response.on("data", (chunk) => { body += chunk; });
    response.on("end", () => finish({
      status: response.statusCode,
      headers: response.headers,
      body,
    }));
  });
  ws.on("open", () => finish({ error: "the handshake was accepted" }, 1));
  ws.on("error", (err) => finish({ error: String(err) }, 1));
}

function serverClose() {
  const ws = connect();
  ws.on("close", (code, reason) => finish(closeReport(ws, code, reason)));
  ws.on("error", (err) => finish({ error: String(err) }, 1));
}

const scenarios = { echo, subprotocol, refuse, "server-close": serverClose };
if (!scenarios[scenario]) finish({ error: `unknown scenario ${scenario}` }, 2);
else scenarios[scenario]();
