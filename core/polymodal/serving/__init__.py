"""HTTP serving: FastAPI app, dynamic batching, Prometheus metrics."""
