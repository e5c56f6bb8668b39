// Interop peer: the `ws` package as a client of an asgiws server.
// Usage: node echo_client.js URL DEFLATE(0|1)
// Sends a text, a binary, an empty and a large compressible message, prints
// one JSON line with what came back and what was negotiated, then closes 4000.
const WebSocket = require("ws");

const [url, deflate] = process.argv.slice(2);
const ws = new WebSocket(url, { perMessageDeflate: deflate === "1" });
const sent = ["hello", Buffer.from([0, 1, 2, 255]), "", "abc".repeat(20000)];
const received = [];
const timer = setTimeout(() => { console.log(JSON.stringify({ error: "timeout" })); process.exit(2); }, 10000);

ws.on("open", () => { for (const m of sent) ws.send(m); });
ws.on("message", (data, isBinary) => {
  received.push(isBinary ? { binary: [...data] } : { text: data.toString() });
  if (received.length === sent.length) ws.close(4000, "node done");
});
ws.on("close", (code, reason) => {
  clearTimeout(timer);
  console.log(JSON.stringify({
    received,
    extensions: ws.extensions,
    protocol: ws.protocol,
    code,
    reason: reason.toString(),
  }));
});
ws.on("error", (err) => { console.log(JSON.stringify({ error: String(err) })); process.exit(1); });
