"""Embedded single-node Apache Kafka (KRaft) from Maven Central jars, run as a subprocess."""

from timex_stream.tools.broker.embedded import KAFKA_VERSION, EmbeddedKafka, ensure_jars

__all__ = ["KAFKA_VERSION", "EmbeddedKafka", "ensure_jars"]
