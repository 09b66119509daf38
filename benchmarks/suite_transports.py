"""The transports of ordered_sender the suite can race, found in the installed library.

``boto3`` (the default, ``ordered_sender.transport.iotevents``) is always there; ``http``, the
lean signed HTTP transport of issue 7, is raced when ``ordered_sender.transport.http`` exists.
"""

from __future__ import annotations

import importlib
from typing import Any

HTTP_MODULE = "ordered_sender.transport.http"


def available_transports() -> list[str]:
    names = ["boto3"]
    try:
        importlib.import_module(HTTP_MODULE)
    except ImportError:
        return names
    return [*names, "http"]


def http_transport(endpoint_url: str) -> Any:
    """The lean HTTP transport aimed at ``endpoint_url``, credentials from the environment."""
    module = importlib.import_module(HTTP_MODULE)
    return module.HttpTransport.from_environment(endpoint_url=endpoint_url)
