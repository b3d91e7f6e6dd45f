"""Operational metrics (``/metrics``, Prometheus) and structured logs with a request id.

Everything an operator watches, apart from the clinical pages: ``docs/operations.md`` lists
the metrics, the token, the multi-process mode and the log format. The application wires it
in one call (``telemed.observability.setup.install``).
"""
