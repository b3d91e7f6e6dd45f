"""The second factor: TOTP (RFC 6238) with recovery codes, and re-authentication for
sensitive actions. docs/mfa.md says the policy; ``service`` holds every rule."""
