"""The asyncio shells: they move frames between a WebSocket and the core, and own tasks."""
