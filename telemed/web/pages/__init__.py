"""Pages that several domains render: their builders gather each domain's part through
that domain's service or ``panels`` module, never through another domain's views."""
