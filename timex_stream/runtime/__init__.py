"""What the services share: settings, logs, Kafka and Faust helpers, the claim check,
records, the request index and its readers."""
