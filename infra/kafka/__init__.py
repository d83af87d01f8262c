"""A real Apache Kafka broker for Renkei, assembled from Maven Central jars."""

from .cluster import ClusterState, LocalCluster, NodeSpec
from .runtime import KafkaRuntime, kafka_version

__all__ = ["ClusterState", "KafkaRuntime", "LocalCluster", "NodeSpec", "kafka_version"]
