"""Infrastructure Renkei starts itself: the Kafka broker."""
