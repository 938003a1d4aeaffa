"""Gateway: the HTTP API in front of Kafka (submit configs, follow requests, fetch results)."""
