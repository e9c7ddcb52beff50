"""Frontends: one per wire protocol, each calling the service layer."""
