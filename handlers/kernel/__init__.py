"""The kernel: what every feature and channel may use (the Turn, inbound and outbox, the conversation and
its command registry, the ports channels implement, people and binding, privacy and text folding)."""
