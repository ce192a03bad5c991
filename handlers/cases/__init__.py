"""The cases feature: opening a case from a report, every staff and resident action on it, its time
limits and escalation, digests, statistics and exports; its own tables in ``classify_models``."""
