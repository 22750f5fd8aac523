"""lineoa-export: triggered activations pushed to LINE exactly once.

The package reads as the data flow::

    trigger → activations → templates → outbox → worker → rate_limit
            → line_client → outcomes → retry_policy → outbox (activation table)
"""

__version__ = "0.1.0"
