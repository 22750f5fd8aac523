"""An event's journey, one module per step, in the order it travels.

triggers → outbox → worker → rate_limit → channel → line_client → outcomes → retry_policy,
with states (the one vocabulary of event states).
"""
