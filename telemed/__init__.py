"""Telemed: telemedicine consultations between Lesotho health workers and diaspora specialists."""

__version__ = "0.1.0"
