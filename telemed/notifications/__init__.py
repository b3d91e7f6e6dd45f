"""Notifications: in-app notices, and an outbox of e-mails and SMS drained by a job."""
