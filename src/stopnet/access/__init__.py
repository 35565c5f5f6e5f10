"""Who is acting (principals), sign-in, API tokens and the record-visibility policy."""
