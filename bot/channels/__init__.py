"""The chat platforms (each a package) and the registry that lists them (``bot.channels.registry``)."""
