"""Prometheus metrics of the server (prometheus_client, one registry per app)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("polymodal_requests", "Prediction requests by model and status",
                                ["model", "status"], registry=self.registry)
        self.latency = Histogram("polymodal_request_seconds", "Prediction request latency",
                                 ["model"], registry=self.registry,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
                                          10, 30))
        self.batch_size = Histogram("polymodal_batch_size", "Records per forward batch",
                                    ["model"], registry=self.registry,
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))
        self.queue_depth = Gauge("polymodal_queue_depth", "Requests waiting for a batch",
                                 ["model"], registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)
