"""Curation: which sampled actions make pairs (filters), the pairs themselves, engine verification."""
