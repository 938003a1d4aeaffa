"""Embedded Apache Kafka (KRaft) from Maven Central jars, run as subprocesses: one node, or a local cluster."""

from timex_stream.tools.broker.cluster import EmbeddedCluster
from timex_stream.tools.broker.embedded import KAFKA_VERSION, EmbeddedKafka, ensure_jars

__all__ = ["KAFKA_VERSION", "EmbeddedCluster", "EmbeddedKafka", "ensure_jars"]
