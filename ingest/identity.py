"""The one credential builder: the app's managed identity in Azure, your own login locally."""

from __future__ import annotations

from typing import Any


def credential(client_id: str = "") -> Any:
    """``DefaultAzureCredential``; a user-assigned managed identity when its client id is given.

    Never interactive: a command that has no login fails with the SDK's message instead of
    opening a browser.
    """
    from azure.identity import DefaultAzureCredential

    if client_id:
        return DefaultAzureCredential(
            managed_identity_client_id=client_id, exclude_interactive_browser_credential=True
        )
    return DefaultAzureCredential(exclude_interactive_browser_credential=True)
