"""TIMEX Stream's own floor between the core and the services, in two parts:
`timex_stream.runtime` (what the services share: settings, logs, Kafka and Faust helpers, the fan-out, the
claim check, records, the request index and its readers) and `timex_stream.tools` (the `timex-stream` CLI,
the local stack, the embedded broker, replay, follow, compare). Services import the runtime only."""
