"""Live forecasts (a request that follows a Kafka source topic): the broker-free core.

- `observations`: one source-topic record -> `Observation`s (three formats), or a `BadObservation` saying why;
- `window`: a bounded rolling window per series (duplicates once, lateness, gaps filled as a CSV's);
- `models`: per-point update of a fitted model (one small class per model kind, the same methods for all),
  with a persistable state;
- `params`: `input_parameters.source_topic` and `live_parameters`, validated.

Nothing here talks to Kafka: the live service (not written yet) decodes, folds and publishes with these.
"""
