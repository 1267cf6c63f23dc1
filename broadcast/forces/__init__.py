"""Forces: the platform's tenants (registry, which force a command works as, their settings)."""
