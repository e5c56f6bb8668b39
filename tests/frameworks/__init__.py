"""Small apps of the major ASGI frameworks, served by the asgiws CLI in tests.

Every app offers the same surface, so one test body runs against all:

- `GET /` -> text "<framework> home"; `GET /health` -> JSON {"status": "ok", ...}
  (with what lifespan put in the state where the framework has lifespan);
- `WS /ws` -> accepts with subprotocol "chat.v2" when offered and the header
  `x-framework: <name>`; echoes text and bytes; the text "close CODE REASON"
  makes the app close with that code and reason; the client's close code and
  reason, as the framework reports them, are recorded;
- `GET /last-disconnect` -> that record as JSON (waits up to 5 s for one);
- `WS /ws/denied` -> refused before accept, in the framework's own way.
"""
