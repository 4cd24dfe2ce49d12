"""Data: sources (rooms, NYUv2, Tiny-Taskonomy), sample schema, shard writing and reading, manifests."""
