"""Streaming roles (producer, consumer, alerts), the Kafka message schema and Kafka I/O."""
