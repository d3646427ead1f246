"""firstcontact: call-taker assist service for police contact centres."""

__version__ = "0.1.0"
