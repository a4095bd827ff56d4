"""The types every layer shares: sessions, messages, events, errors, callers, ids."""
