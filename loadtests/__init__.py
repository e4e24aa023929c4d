"""Load tests for the ticket-triage server: ``locust -f loadtests/locustfile.py`` (see docs/loadtest.md).

Only ``locustfile.py`` imports locust (it monkey-patches the process with gevent); the helpers beside it
(payloads, shapes, thresholds) are plain Python so the test suite can import them safely.
"""
