"""asgiws: an ASGI server for HTTP/1.1 and WebSocket on one port."""

from asgiws.config import Config

__version__ = "0.1.0"
__all__ = ["Config", "__version__"]
