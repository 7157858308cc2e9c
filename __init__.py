"""scimledger: an event-sourced SCIM 2.0 provisioning ledger."""

__version__ = "0.1.0"
