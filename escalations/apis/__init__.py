"""The escalations JSON API, one module per capability (`actions`, `policy`, `decisions`);
urls_api.py and urls_decisions.py route to them. Each view parses, calls one service or
selector, and serializes."""
