"""Burrow: a multi-tenant message queue service with a REST API."""

from burrow.errors import BurrowError
from burrow.model import Attributes, Detail, Filters, Message, NewMessage

__all__ = ["Attributes", "BurrowError", "Detail", "Filters", "Message", "NewMessage"]
__version__ = "0.1.0"
