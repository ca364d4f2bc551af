"""Escalations' JSON API, one module per capability (`actions`, `policy`, `decisions`), routed
by `escalations/urls_api.py`. Each view parses, calls one service or selector, and serializes."""
