"""Streaming probes: small, mergeable summaries computed batch by batch."""
