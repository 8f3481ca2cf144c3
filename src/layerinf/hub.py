"""Whether the Hugging Face hub may and can be reached (standard library only; `layerinf.config`
re-exports both checks)."""

from __future__ import annotations

import os


def hub_offline() -> bool:
    """Whether Hugging Face hub access is switched off (``HF_HUB_OFFLINE``), read the way
    huggingface_hub reads it: 1, ON, YES or TRUE, in any case, mean off; anything else means on."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}


#: How long the hub may take to answer the first connection before a hub id is refused.
HUB_TIMEOUT_S = 5.0


def hub_unreachable() -> str | None:
    """Why the Hugging Face hub cannot be reached (None if a TCP connection opens within
    `HUB_TIMEOUT_S`): a fail-fast check instead of the client's minute of retries."""
    import socket
    from urllib.parse import urlparse

    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    url = urlparse(endpoint)
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=HUB_TIMEOUT_S):
            return None
    except OSError as err:
        return f"{endpoint} is unreachable ({type(err).__name__}: {err})"
