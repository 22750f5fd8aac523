"""The HTTP front ends: the JSON API, the web console, metrics, and serve."""
