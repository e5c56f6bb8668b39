"""asgiws: an ASGI server for HTTP/1.1 and WebSocket on one port."""

from asgiws.config import Config
from asgiws.main import run
from asgiws.server import Server

__version__ = "0.1.0"
__all__ = ["Config", "Server", "__version__", "run"]
