"""WebSocket extensions: the interface (`base`) and permessage-deflate on it."""

from asgiws.extensions.base import (
    ClientExtensionFactory,
    Extension,
    ExtensionParameter,
    Frame,
    ServerExtensionFactory,
)
from asgiws.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)

__all__ = [
    "ClientExtensionFactory",
    "ClientPerMessageDeflateFactory",
    "Extension",
    "ExtensionParameter",
    "Frame",
    "PerMessageDeflate",
    "ServerExtensionFactory",
    "ServerPerMessageDeflateFactory",
]
