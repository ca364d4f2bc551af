"""The escalations JSON API, one module per capability; urls_api.py and urls_decisions.py route
to them."""
