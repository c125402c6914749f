"""volume-worker: a standalone block-storage volume service driven over RabbitMQ."""
