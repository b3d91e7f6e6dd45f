"""Appointments: the booked time of a live consult, its changes and its calendar invites."""
