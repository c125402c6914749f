"""Storage drivers for volume-worker: the driver contract and the bundled backends."""
