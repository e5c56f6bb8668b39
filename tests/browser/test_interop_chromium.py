"""Headless Chromium's own WebSocket against the asgiws CLI: the 1,000-message
mix as text and ArrayBuffer, and again as text and Blob, echoed
byte-identically with permessage-deflate on (Chromium always offers it);
close codes and reasons both ways; a subprotocol; a denial response."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page

from tests.browser.test_pages import browser  # noqa: F401  (the Chromium fixture)
from tests.conftest import ServerProcess, StartServer
from tests.integration.interop_messages import check_echo_report, message_mix

pytestmark = pytest.mark.browser

APP = "tests.apps:protocol"
CLOSE = {"code": 4003, "reason": "chromium done ✓"}

# Runs in the page: opens a WebSocket, sends the mix, checks every echo
# against what was sent, closes with the code and reason asked for, and
# resolves with a report (the same shape as tests/node/interop_client.js's).
ECHO_MIX_JS = """
async ({url, messages, binaryType, close}) => {
  const decode = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const sent = messages.map((m) => m.text !== undefined ? m.text : decode(m.binary));
  const ws = new WebSocket(url);
  ws.binaryType = binaryType;
  const echoes = [];
  const closed = new Promise((resolve) => {
    ws.onclose = (event) => resolve({code: event.code, reason: event.reason});
  });
  const allEchoed = new Promise((resolve, reject) => {
    ws.onmessage = (event) => {
      echoes.push(event.data);
      if (echoes.length === sent.length) resolve();
    };
    ws.onerror = () => reject(new Error("WebSocket error"));
  });
  await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
  for (const m of sent) {
    if (typeof m === "string") ws.send(m);
    else if (binaryType === "blob") ws.send(new Blob([m]));
    else ws.send(m.buffer);
  }
  await allEchoed;
  const encoder = new TextEncoder();
  const parts = [];
  const mismatches = [];
  let bytes = 0;
  for (let i = 0; i < echoes.length; i++) {
    const echo = echoes[i];
    const isText = typeof echo === "string";
    if (!isText && !(echo instanceof (binaryType === "blob" ? Blob : ArrayBuffer))) {
      mismatches.push(i);
      continue;
    }
    const payload = isText ? encoder.encode(echo)
      : new Uint8Array(binaryType === "blob" ? await echo.arrayBuffer() : echo);
    const want = sent[i];
    const same = isText ? echo === want
      : typeof want !== "string" && payload.length === want.length
        && payload.every((byte, at) => byte === want[at]);
    if (!same && mismatches.length < 10) mismatches.push(i);
    const header = new Uint8Array(5);
    header[0] = isText ? 84 : 66;  // "T" or "B"
    new DataView(header.buffer).setUint32(1, payload.length);
    parts.push(header, payload);
    bytes += payload.length;
  }
  const digest = await crypto.subtle.digest("SHA-256", await new Blob(parts).arrayBuffer());
  const hex = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
  const extensions = ws.extensions;
  ws.close(close.code, close.reason);
  const closing = await closed;
  return {received: echoes.length, bytes, mismatches, digest: hex, extensions, ...closing};
}
"""

# Opens a WebSocket and resolves with how it ended: whether it opened, the
# subprotocol, the close code and reason, and whether an error event came.
CONNECT_JS = """
async ({url, protocols}) => {
  const ws = new WebSocket(url, protocols);
  let opened = false, errored = false, protocol = null;
  return await new Promise((resolve) => {
    ws.onopen = () => { opened = true; protocol = ws.protocol; if (protocols.length) ws.close(); };
    ws.onerror = () => { errored = true; };
    ws.onclose = (e) => resolve({opened, errored, protocol, code: e.code, reason: e.reason});
  });
}
"""


async def open_page(browser: Browser, server: ServerProcess) -> Page:  # noqa: F811
    page = await browser.new_page()
    # A page of the server's own origin (HTTP / answers "ok"), a secure context
    # on 127.0.0.1, so crypto.subtle is there.
    await page.goto(server.url)
    return page


@pytest.mark.parametrize("binary_type", ["arraybuffer", "blob"])
async def test_chromium_echoes_the_message_mix(
    browser: Browser,  # noqa: F811
    run_server: StartServer,
    binary_type: str,
) -> None:
    server = run_server("tests.apps:protocol")
    page = await open_page(browser, server)
    mix = message_mix()
    report: dict[str, Any] = await page.evaluate(
        ECHO_MIX_JS,
        {
            "url": f"{server.ws_url}/echo",
            "messages": mix.as_json(),
            "binaryType": binary_type,
            "close": CLOSE,
        },
    )
    check_echo_report(report, mix)
    assert report["extensions"].startswith("permessage-deflate")
    assert report["code"] == CLOSE["code"]
    # The app saw the code and reason the page closed with.
    last_disconnect = httpx.get(f"{server.url}/last-disconnect", timeout=10)
    assert last_disconnect.json() == CLOSE


async def test_chromium_close_codes_and_subprotocol(
    browser: Browser,  # noqa: F811
    run_server: StartServer,
) -> None:
    server = run_server(APP)
    page = await open_page(browser, server)
    closed = await page.evaluate(
        CONNECT_JS, {"url": f"{server.ws_url}/close/4321", "protocols": []}
    )
    assert (closed["opened"], closed["code"], closed["reason"]) == (True, 4321, "by server")
    chosen = await page.evaluate(
        CONNECT_JS, {"url": f"{server.ws_url}/subprotocol", "protocols": ["chat.v2", "v1"]}
    )
    assert (chosen["opened"], chosen["protocol"]) == (True, "chat.v2")


async def test_chromium_is_refused_by_the_denial_response(
    browser: Browser,  # noqa: F811
    run_server: StartServer,
) -> None:
    server = run_server(APP)
    page = await open_page(browser, server)
    refused = await page.evaluate(CONNECT_JS, {"url": f"{server.ws_url}/refuse", "protocols": []})
    # A page never sees the status of a refused handshake: only an error and 1006.
    assert (refused["opened"], refused["errored"], refused["code"]) == (False, True, 1006)
    server.wait_for_log(r'"WebSocket /refuse" 401')
