"""Alerts: which anomalies notify (manager), what the message says, and how it is delivered."""
