"""What LINE tells afterwards, side by side with what we sent (issue 10).

- ``line.py``: one authentication's LINE client and token, for a call that is not a push.
- ``statistics.py``: LINE's statistics for an activation's aggregation unit, kept with the time
  they were fetched, asked within LINE's 60 requests an hour per channel.
- ``reconcile.py``: LINE's count of pushes on a day (UTC+9) next to the pushes our activation
  table recorded as accepted.

The monthly budget of aggregation units is a delivery matter and lives in ``delivery/units.py``.
"""
