"""Recommendation plugin: implicit-feedback collaborative filtering (``implicit``) with
multimodal content features for cold-start items."""
