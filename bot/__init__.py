"""The application: settings, composition root, CLI, server and channel adapters."""
