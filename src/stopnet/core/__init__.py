"""Small pieces shared by every domain: errors, paging, idempotency."""
