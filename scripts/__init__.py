"""The operator CLI: `scimledger serve`, `scimledger tokens ...`."""
