"""pagebridge: page files and live byte streams over WebSocket, acknowledged and verified."""

__version__ = "0.1.0"
