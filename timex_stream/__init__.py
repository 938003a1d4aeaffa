"""What the TIMEX Stream services share: settings, logging, Kafka helpers, the Faust app factory,
the embedded broker and the `timex-stream` CLI."""
