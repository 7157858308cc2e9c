"""The write side: aggregates, their events, and the `Ledger` application."""
