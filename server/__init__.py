"""ticket-triage inference server: Litestar + ONNX Runtime, serving one bundle written by
`python -m export.onnx`.

Start it with `python -m server` (see docs/server.md); build the app in code with `server.app.create_app`.
"""
